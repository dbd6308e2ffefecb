"""Local servers that speak third-party HTTP APIs to the real clients, so backends are tested end to end offline.

``tests.servers.hub`` is a Hugging Face Hub (model repositories, git-LFS uploads, refs, downloads);
``tests.servers.fixtures`` holds its pytest fixtures. ``tests.servers.github`` is GitHub's REST API
(pull requests, reviews, statuses, comments, issues, teams), each response checked against GitHub's
OpenAPI description (``tests.servers.openapi``); ``tests.servers.github_fixtures`` holds its fixtures.
"""
