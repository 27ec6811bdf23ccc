"""Lambda functions that turn lyrics into songs with MiniMax Music, served by API in One."""
