"""The local playground (a web chat on the same Core as Discord and Telegram) and the admin dashboard.

``server`` builds the aiohttp application and its safety checks, ``adapter`` turns
playground requests into Core calls, ``dashboard`` reads pictures, runs and models
for the admin pages; ``static/`` is plain HTML, CSS and JS with no build step.
"""
