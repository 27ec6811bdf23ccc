"""What stands in for the cloud on one machine: the API emulator and the local stack."""
