"""The routes of the web application, one module per group of endpoints: the page and its static
files (:mod:`~hashlearn.serve.routes.page`), health and stats
(:mod:`~hashlearn.serve.routes.status`), search (:mod:`~hashlearn.serve.routes.search`) and items
(:mod:`~hashlearn.serve.routes.items`). :func:`hashlearn.serve.app.create_app` adds them in that
order."""
