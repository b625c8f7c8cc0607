"""The web process (``so101d web``): the dashboard and the calibration wizard in a browser.

A separate process and a client of the control socket like the CLI: :mod:`.server` (HTTP
routes), :mod:`.auth` (the token), :mod:`.stream` (one poller of the daemon for every
browser) and ``static/`` (the page, its script and style; no CDN, no build step). Needs the
``web`` extra (aiohttp); the daemon does not.
"""
