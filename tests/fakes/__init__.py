"""Test doubles for the chat bot: a tiny generator and in-process fake Telegram and Discord servers."""
