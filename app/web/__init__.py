"""The gridrank web app (Gradio): search, composed search, video moments and indexing in a browser.

Modules, one job each:
    media_access  which files the browser may fetch (the indexed root only, media files only)
    thumbnails    small cached images: gallery thumbnails, full-view previews, video S-Grids, subtitles
    video         one frame at a moment, and subtitles as WebVTT
    backend       the server's state and its one search path (SearchRequest -> SearchService), uploads
    views         what the page shows of a response: result cells, the selected result, videos, model panel
    formatting    the page's words: status lines, rankings, timings, captions (pure functions)
    indexing      a background indexing run with progress, cancel and a swap to the new index
    ui            the Blocks layout
    server        launch: host, port, auth, allowed paths, the queue

Gradio is imported only by `ui` and `server`, so `gridrank search` never pays for it.
"""
