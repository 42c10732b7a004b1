"""Command handlers by concern: drawing, sketches and submissions, curation, models, information.

Each module declares its commands as registry entries (``bot.registry.Spec``) beside their
handlers; ``bot.commands`` gathers them into the bot's registry.
"""
