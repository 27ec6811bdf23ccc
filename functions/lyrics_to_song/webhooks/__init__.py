"""Webhooks: which callback URLs may be called (callbacks.py), a webhook on its queue,
signed (queue.py), and the webhook function's delivery of it (delivery.py, which the
submit and poll functions never import)."""
