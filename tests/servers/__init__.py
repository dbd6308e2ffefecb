"""Local servers that speak third-party HTTP APIs to the real clients, so backends are tested end to end offline.

``tests.servers.hub`` is a Hugging Face Hub (model repositories, git-LFS uploads, refs, downloads);
``tests.servers.fixtures`` holds its pytest fixtures.
"""
