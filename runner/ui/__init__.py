"""The web view of a store's runs (``runner ui``, ``client.ui()``); needs ``ray-runner[ui]``.

Modules: queries (the run list, keyset paged), run_view (a run page's data and
lineage), graph_svg and timeline (the drawings), payloads (values as short
text), pages (the HTML), actions (what the buttons do), access (bind address
and token), app (the routes), server (uvicorn), serve_app (a Ray Serve
application on the cluster; needs ``ray-runner[serve]``).
"""
