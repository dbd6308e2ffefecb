"""The local Hub (tests/servers/hub.py) against the real huggingface_hub client, through real HTTP only.

Every endpoint regops' Hub storage backend relies on, the errors the client must type, and the test-only switches
(faults, request records, the unserved-endpoint detector, direct state helpers).
"""

from __future__ import annotations

import hashlib
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx2
import pytest
from huggingface_hub import (
    CommitOperationAdd,
    CommitOperationDelete,
    HfApi,
    get_hf_file_metadata,
    get_session,
    hf_hub_download,
)
from huggingface_hub.errors import (
    BadRequestError,
    EntryNotFoundError,
    HfHubHTTPError,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from huggingface_hub.hf_api import RepoFile, RepoFolder
from huggingface_hub.lfs import UploadInfo, post_lfs_batch_info

from tests.servers.fixtures import DEFAULT_TOKENS, HubFixture

ROOT = Path(__file__).parent.parent
Add = CommitOperationAdd
Delete = CommitOperationDelete


def data(size: int, seed: str) -> bytes:
    """Deterministic bytes (NULs included, like weights)."""
    block = hashlib.sha256(seed.encode()).digest() + b"\0" * 32
    return (block * (size // len(block) + 1))[:size]


def sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def pointer(content: bytes) -> str:
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256(content)}\nsize {len(content)}\n"


def new_repo(hub: HubFixture, name: str = "weights", *, private: bool = False) -> str:
    return hub.api().create_repo(f"{hub.org}/{name}", private=private).repo_id


def download(hub: HubFixture, repo: str, filename: str, revision: str | None = None, token: str | None = None) -> bytes:
    path = hf_hub_download(repo, filename, revision=revision, endpoint=hub.url, token=token or hub.write_token)
    return Path(path).read_bytes()


def test_whoami_names_the_user_their_orgs_and_the_token_role(hub_server: HubFixture) -> None:
    me = hub_server.api().whoami()
    assert me["name"] == "alice"
    assert [org["name"] for org in me["orgs"]] == ["acme-ml"]
    assert me["auth"]["accessToken"]["role"] == "write"
    assert hub_server.api(hub_server.read_token).whoami()["auth"]["accessToken"]["role"] == "read"

    with pytest.raises(HfHubHTTPError) as invalid:
        hub_server.api("hf_not_a_token").whoami()
    assert invalid.value.response.status_code == 401


def test_create_repo_private_exist_ok_and_refusals(hub_server: HubFixture) -> None:
    api = hub_server.api()
    url = api.create_repo("acme-ml/weights", private=True)
    assert url == f"{hub_server.url}/acme-ml/weights"
    assert url.repo_id == "acme-ml/weights"
    assert api.create_repo("acme-ml/weights", private=True, exist_ok=True) == url
    with pytest.raises(HfHubHTTPError) as conflict:
        api.create_repo("acme-ml/weights")
    assert conflict.value.response.status_code == 409
    assert api.model_info("acme-ml/weights").private is True

    # A real bare repository with the Hub's initial commit.
    assert hub_server.git("acme-ml/weights", "log", "--format=%s", "main").splitlines() == ["initial commit"]
    assert "*.safetensors filter=lfs diff=lfs merge=lfs -text" in hub_server.git(
        "acme-ml/weights", "show", "main:.gitattributes"
    )
    assert (hub_server.root / "repos" / "acme-ml" / "weights.git" / "HEAD").is_file()

    # Private: the anonymous and outsiders do not see it (401 and 404, both "repository not found").
    with pytest.raises(RepositoryNotFoundError) as anonymous:
        hub_server.api(False).model_info("acme-ml/weights")
    assert anonymous.value.response.status_code == 401
    with pytest.raises(RepositoryNotFoundError) as outsider:
        hub_server.api(hub_server.mallory_token).model_info("acme-ml/weights")
    assert outsider.value.response.status_code == 404

    with pytest.raises(HfHubHTTPError) as foreign:
        hub_server.api(hub_server.mallory_token).create_repo("acme-ml/other")
    assert foreign.value.response.status_code == 403
    assert 'You don\'t have the rights to create a model under the namespace "acme-ml"' in str(foreign.value)
    with pytest.raises(HfHubHTTPError) as read_only:
        hub_server.api(hub_server.read_token).create_repo("acme-ml/other")
    assert read_only.value.response.status_code == 403
    assert "read-only" in str(read_only.value)
    # exist_ok with a token that cannot create: the client falls back to checking the repository is there.
    assert hub_server.api(hub_server.read_token).create_repo("acme-ml/weights", exist_ok=True) == url
    assert [r.name for r in api.list_repo_refs("acme-ml/weights").branches] == ["main"]


def test_commit_puts_regular_files_in_git_and_lfs_files_in_storage(hub_server: HubFixture) -> None:
    api = hub_server.api()
    repo = new_repo(hub_server)
    weights, big = data(300_000, "weights"), data(11 * 2**20, "big")
    info = api.create_commit(
        repo,
        [
            Add(path_in_repo="config.json", path_or_fileobj=b'{"hidden": 8}'),
            Add(path_in_repo="model.safetensors", path_or_fileobj=weights),  # LFS by .gitattributes
            Add(path_in_repo="data/big.dat", path_or_fileobj=big),  # LFS by size (> 10 MiB)
        ],
        commit_message="Add weights",
        commit_description="v1",
    )

    assert re.fullmatch(r"[0-9a-f]{40}", info.oid)
    assert info.commit_url == f"{hub_server.url}/{repo}/commit/{info.oid}"
    assert hub_server.git(repo, "rev-parse", "main").strip() == info.oid
    assert hub_server.git(repo, "log", "-1", "--format=%an|%s|%b", "main").strip() == "alice|Add weights|v1"
    assert hub_server.git(repo, "show", "main:config.json") == '{"hidden": 8}'
    assert hub_server.git(repo, "show", "main:model.safetensors") == pointer(weights)
    assert hub_server.git(repo, "show", "main:data/big.dat") == pointer(big)
    assert hub_server.lfs_path(repo, sha256(weights)).read_bytes() == weights
    assert hub_server.lfs_path(repo, sha256(big)).stat().st_size == len(big)
    puts = [record for record in hub_server.requests if record.method == "PUT"]
    assert sorted((record.status, record.bytes_in) for record in puts) == [(200, len(weights)), (200, len(big))]

    tree = {entry.path: entry for entry in api.list_repo_tree(repo, recursive=True)}
    assert set(tree) == {".gitattributes", "config.json", "model.safetensors", "data", "data/big.dat"}
    assert isinstance(tree["data"], RepoFolder)
    model, config = tree["model.safetensors"], tree["config.json"]
    assert isinstance(model, RepoFile)
    assert model.lfs is not None
    assert (model.size, model.lfs.sha256, model.lfs.size, model.lfs.pointer_size) == (
        len(weights),
        sha256(weights),
        len(weights),
        len(pointer(weights)),
    )
    assert isinstance(config, RepoFile)
    assert config.lfs is None
    assert config.size == 13
    assert config.blob_id == hub_server.git(repo, "rev-parse", "main:config.json").strip()
    assert {entry.path for entry in api.list_repo_tree(repo)} == {
        ".gitattributes",
        "config.json",
        "model.safetensors",
        "data",
    }
    assert [entry.path for entry in api.list_repo_tree(repo, "data")] == ["data/big.dat"]

    paths = api.get_paths_info(repo, ["model.safetensors", "data", "missing.bin"], revision=info.oid, expand=True)
    by_path = {entry.path: entry for entry in paths}
    assert set(by_path) == {"model.safetensors", "data"}
    listed = by_path["model.safetensors"]
    assert isinstance(listed, RepoFile)
    assert listed.lfs is not None
    assert listed.lfs.sha256 == sha256(weights)
    assert listed.last_commit is not None
    assert listed.last_commit.oid == info.oid


def test_identical_content_is_not_uploaded_again(hub_server: HubFixture) -> None:
    api = hub_server.api()
    repo = new_repo(hub_server)
    weights = data(200_000, "weights")
    api.create_commit(
        repo,
        [Add(path_in_repo="a.safetensors", path_or_fileobj=weights), Add(path_in_repo="c.json", path_or_fileobj=b"{}")],
        commit_message="one",
    )

    # Same bytes under another path: the LFS batch API answers "already there", no upload.
    before = len(hub_server.requests)
    second = api.create_commit(
        repo, [Add(path_in_repo="copy/b.safetensors", path_or_fileobj=weights)], commit_message="two"
    )
    new = hub_server.requests[before:]
    assert any(record.path.endswith(".git/info/lfs/objects/batch") for record in new)
    assert not [record for record in new if record.method == "PUT"]
    assert hub_server.git(repo, "show", "main:copy/b.safetensors") == pointer(weights)

    # Same bytes at the same paths: preupload reports the oids (sha256, git blob id), the client does not commit.
    before = len(hub_server.requests)
    third = api.create_commit(
        repo,
        [Add(path_in_repo="a.safetensors", path_or_fileobj=weights), Add(path_in_repo="c.json", path_or_fileobj=b"{}")],
        commit_message="three",
    )
    new = hub_server.requests[before:]
    assert [record.path.split("/")[5] for record in new if record.path.startswith("/api/")] == ["preupload", "revision"]
    assert not [record for record in new if record.method == "PUT" or "/commit/" in record.path]
    assert third.oid == second.oid == hub_server.git(repo, "rev-parse", "main").strip()


def test_commits_delete_files_and_folders(hub_server: HubFixture) -> None:
    api = hub_server.api()
    repo = new_repo(hub_server)
    api.create_commit(
        repo,
        [
            Add(path_in_repo="a.txt", path_or_fileobj=b"a"),
            Add(path_in_repo="dir/b.txt", path_or_fileobj=b"b"),
            Add(path_in_repo="dir/sub/c.safetensors", path_or_fileobj=b"c"),
            Add(path_in_repo="keep.txt", path_or_fileobj=b"k"),
        ],
        commit_message="files",
    )
    api.create_commit(repo, [Delete(path_in_repo="a.txt"), Delete(path_in_repo="dir/")], commit_message="delete")
    assert sorted(api.list_repo_files(repo)) == [".gitattributes", "keep.txt"]
    assert hub_server.git(repo, "ls-tree", "-r", "--name-only", "main").split() == [".gitattributes", "keep.txt"]

    with pytest.raises(EntryNotFoundError, match="A file with this name doesn't exist"):
        api.create_commit(repo, [Delete(path_in_repo="a.txt")], commit_message="again")
    with pytest.raises(EntryNotFoundError):
        api.create_commit(repo, [Delete(path_in_repo="dir/")], commit_message="again")


def test_a_commit_on_a_moved_branch_is_refused(hub_server: HubFixture) -> None:
    api = hub_server.api()
    repo = new_repo(hub_server)
    base = api.model_info(repo).sha
    assert base is not None
    first = api.create_commit(
        repo, [Add(path_in_repo="a.txt", path_or_fileobj=b"1")], commit_message="one", parent_commit=base
    )
    with pytest.raises(HfHubHTTPError) as moved:
        api.create_commit(
            repo, [Add(path_in_repo="b.txt", path_or_fileobj=b"2")], commit_message="two", parent_commit=base
        )
    assert moved.value.response.status_code == 412
    assert "A commit has happened since. Please refresh and try again." in str(moved.value)
    assert api.model_info(repo).sha == first.oid

    # Someone force-moves the branch by hand: a writer still holding the old head is refused.
    hub_server.move_branch(repo, "main", base)
    assert api.model_info(repo).sha == base
    with pytest.raises(HfHubHTTPError) as stale:
        api.create_commit(
            repo, [Add(path_in_repo="c.txt", path_or_fileobj=b"3")], commit_message="three", parent_commit=first.oid
        )
    assert stale.value.response.status_code == 412


def test_branches_and_tags_are_real_git_refs(hub_server: HubFixture) -> None:
    api = hub_server.api()
    repo = new_repo(hub_server)
    first = api.create_commit(repo, [Add(path_in_repo="v.txt", path_or_fileobj=b"1")], commit_message="one")
    second = api.create_commit(repo, [Add(path_in_repo="v.txt", path_or_fileobj=b"2")], commit_message="two")

    api.create_branch(repo, branch="release", revision=first.oid)
    api.create_tag(repo, tag="v1", revision=first.oid[:7], tag_message="First release")
    api.create_tag(repo, tag="v2")
    refs = api.list_repo_refs(repo)
    assert {ref.name: (ref.ref, ref.target_commit) for ref in refs.branches} == {
        "main": ("refs/heads/main", second.oid),
        "release": ("refs/heads/release", first.oid),
    }
    assert {ref.name: ref.target_commit for ref in refs.tags} == {"v1": first.oid, "v2": second.oid}
    assert hub_server.git(repo, "for-each-ref", "--format=%(refname) %(objecttype)").splitlines() == [
        "refs/heads/main commit",
        "refs/heads/release commit",
        "refs/tags/v1 tag",
        "refs/tags/v2 commit",
    ]
    assert "First release" in hub_server.git(repo, "cat-file", "-p", "refs/tags/v1")
    assert api.model_info(repo, revision="v1").sha == first.oid
    assert api.model_info(repo, revision="release").sha == first.oid
    assert api.model_info(repo, revision=second.oid[:8]).sha == second.oid
    assert download(hub_server, repo, "v.txt", revision="v1") == b"1"

    with pytest.raises(HfHubHTTPError, match="Reference refs/heads/release already exists") as branch_exists:
        api.create_branch(repo, branch="release")
    assert branch_exists.value.response.status_code == 409
    api.create_branch(repo, branch="release", exist_ok=True)
    with pytest.raises(HfHubHTTPError) as tag_exists:
        api.create_tag(repo, tag="v1")
    assert tag_exists.value.response.status_code == 409
    api.create_tag(repo, tag="v1", exist_ok=True)
    with pytest.raises(RevisionNotFoundError):
        api.create_branch(repo, branch="other", revision="no-such-revision")
    with pytest.raises(BadRequestError):
        api.create_tag(repo, tag="not a tag")

    fix = api.create_commit(
        repo, [Add(path_in_repo="v.txt", path_or_fileobj=b"1.1")], commit_message="fix", revision="release"
    )
    assert hub_server.git(repo, "rev-parse", "release^").strip() == first.oid
    assert api.model_info(repo, revision="release").sha == fix.oid
    assert api.model_info(repo).sha == second.oid

    api.delete_tag(repo, tag="v1")
    with pytest.raises(RevisionNotFoundError):
        api.model_info(repo, revision="v1")
    with pytest.raises(RevisionNotFoundError):
        api.delete_tag(repo, tag="v1")
    api.delete_branch(repo, branch="release")
    with pytest.raises(HfHubHTTPError, match="Cannot delete refs/heads/main"):
        api.delete_branch(repo, branch="main")
    assert hub_server.git(repo, "for-each-ref", "--format=%(refname)").split() == ["refs/heads/main", "refs/tags/v2"]


def test_revisions_with_slashes_travel_url_encoded(hub_server: HubFixture) -> None:
    api = hub_server.api()
    repo = new_repo(hub_server)
    api.create_branch(repo, branch="feature/x")
    info = api.create_commit(
        repo,
        [Add(path_in_repo="deep/dir/w.safetensors", path_or_fileobj=b"w")],
        commit_message="on a branch",
        revision="feature/x",
    )
    assert hub_server.git(repo, "rev-parse", "refs/heads/feature/x").strip() == info.oid
    assert api.model_info(repo, revision="feature/x").sha == info.oid
    assert [e.path for e in api.list_repo_tree(repo, "deep/dir", revision="feature/x")] == ["deep/dir/w.safetensors"]
    assert download(hub_server, repo, "deep/dir/w.safetensors", revision="feature/x") == b"w"
    assert "feature/x" in {ref.name for ref in api.list_repo_refs(repo).branches}
    api.delete_branch(repo, branch="feature/x")
    with pytest.raises(RevisionNotFoundError):
        api.model_info(repo, revision="feature/x")


def test_a_commit_naming_an_lfs_object_the_storage_lacks_is_refused(hub_server: HubFixture) -> None:
    api = hub_server.api()
    repo = new_repo(hub_server)
    weights = data(20_000, "weights")
    operation = Add(path_in_repo="model.safetensors", path_or_fileobj=weights)
    api.preupload_lfs_files(repo, [operation])
    assert hub_server.lfs_path(repo, sha256(weights)).read_bytes() == weights
    hub_server.lfs_path(repo, sha256(weights)).unlink()  # lost between the upload and the commit
    with pytest.raises(BadRequestError, match="LFS pointer pointed to a file that does not exist"):
        api.create_commit(repo, [operation], commit_message="one")
    assert hub_server.git(repo, "ls-tree", "--name-only", "main").split() == [".gitattributes"]


def test_hf_hub_download_pinned_at_a_commit_returns_its_exact_bytes(hub_server: HubFixture) -> None:
    api = hub_server.api()
    repo = new_repo(hub_server, private=True)
    old, new = data(150_000, "old"), data(150_000, "new")
    first = api.create_commit(
        repo,
        [
            Add(path_in_repo="model.safetensors", path_or_fileobj=old),
            Add(path_in_repo="config.json", path_or_fileobj=b"1"),
        ],
        commit_message="one",
    )
    api.create_commit(
        repo,
        [
            Add(path_in_repo="model.safetensors", path_or_fileobj=new),
            Add(path_in_repo="config.json", path_or_fileobj=b"2"),
        ],
        commit_message="two",
    )
    assert download(hub_server, repo, "model.safetensors", revision=first.oid) == old
    assert download(hub_server, repo, "config.json", revision=first.oid) == b"1"
    assert download(hub_server, repo, "model.safetensors") == new
    assert download(hub_server, repo, "config.json", revision="main") == b"2"
    assert download(hub_server, repo, "config.json", token=hub_server.read_token) == b"2"


def test_resolve_answers_head_metadata_and_byte_ranges(hub_server: HubFixture) -> None:
    api = hub_server.api()
    repo = new_repo(hub_server, private=True)
    weights = data(100_000, "weights")
    info = api.create_commit(
        repo,
        [
            Add(path_in_repo="model.safetensors", path_or_fileobj=weights),
            Add(path_in_repo="c.json", path_or_fileobj=b"0123456789"),
        ],
        commit_message="one",
    )
    session = get_session()
    auth = {"Authorization": f"Bearer {hub_server.write_token}"}
    url = f"{hub_server.url}/{repo}/resolve/{info.oid}/model.safetensors"

    head = session.head(url, headers=auth)
    assert head.status_code == 200
    assert head.headers["X-Repo-Commit"] == info.oid
    assert head.headers["X-Linked-Etag"] == head.headers["ETag"] == f'"{sha256(weights)}"'
    assert head.headers["X-Linked-Size"] == head.headers["Content-Length"] == str(len(weights))
    assert head.headers["Accept-Ranges"] == "bytes"
    metadata = get_hf_file_metadata(url, token=hub_server.write_token)
    assert (metadata.commit_hash, metadata.etag, metadata.size) == (info.oid, sha256(weights), len(weights))

    tail = session.get(url, headers={**auth, "Range": "bytes=1000-"})
    assert tail.status_code == 206
    assert tail.headers["Content-Range"] == f"bytes 1000-{len(weights) - 1}/{len(weights)}"
    assert tail.content == weights[1000:]
    regular = session.get(f"{hub_server.url}/{repo}/resolve/main/c.json", headers={**auth, "Range": "bytes=2-4"})
    assert (regular.status_code, regular.content, regular.headers["Content-Range"]) == (206, b"234", "bytes 2-4/10")
    assert regular.headers["ETag"] == f'"{hub_server.git(repo, "rev-parse", "main:c.json").strip()}"'
    beyond = session.get(url, headers={**auth, "Range": f"bytes={len(weights)}-"})
    assert beyond.status_code == 416
    assert session.get(url).status_code == 401


def test_model_info_reads_the_model_card_front_matter(hub_server: HubFixture) -> None:
    api = hub_server.api()
    repo = new_repo(hub_server)
    weights = data(10_000, "weights")
    readme = "---\nlicense: apache-2.0\nlibrary_name: regops\ntags:\n- registry\n- test\n---\n# Weights\n"
    info = api.create_commit(
        repo,
        [
            Add(path_in_repo="README.md", path_or_fileobj=readme.encode()),
            Add(path_in_repo="model.safetensors", path_or_fileobj=weights),
        ],
        commit_message="card",
    )
    model = api.model_info(repo, files_metadata=True)
    assert model.sha == info.oid
    assert model.card_data is not None
    assert model.card_data.license == "apache-2.0"
    assert model.card_data.tags == ["registry", "test"]
    assert model.library_name == "regops"
    assert model.last_modified is not None
    assert model.siblings is not None
    siblings = {sibling.rfilename: sibling for sibling in model.siblings}
    assert set(siblings) == {".gitattributes", "README.md", "model.safetensors"}
    lfs = siblings["model.safetensors"].lfs
    assert lfs is not None
    assert (lfs.sha256, lfs.size) == (sha256(weights), len(weights))
    assert siblings["README.md"].lfs is None

    expanded = api.model_info(repo, expand=["sha", "cardData"])
    assert expanded.sha == info.oid
    assert expanded.siblings is None

    with pytest.raises(ValueError, match=r"Invalid metadata in README\.md"):
        api.create_commit(
            repo, [Add(path_in_repo="README.md", path_or_fileobj=b"---\nlicense: [\n---\n")], commit_message="bad"
        )


def test_permanently_deleted_lfs_objects_are_gone_from_storage(hub_server: HubFixture) -> None:
    api = hub_server.api()
    repo = new_repo(hub_server)
    weights = data(50_000, "weights")
    api.create_commit(repo, [Add(path_in_repo="model.safetensors", path_or_fileobj=weights)], commit_message="one")
    assert download(hub_server, repo, "model.safetensors") == weights

    files = list(api.list_lfs_files(repo))
    assert [(f.file_oid, f.size, f.filename, f.ref) for f in files] == [
        (sha256(weights), len(weights), "model.safetensors", "refs/heads/main")
    ]
    with pytest.raises(BadRequestError, match="rewriteHistory=true is not supported"):
        api.permanently_delete_lfs_files(repo, files)
    api.permanently_delete_lfs_files(repo, files, rewrite_history=False)
    assert not hub_server.lfs_path(repo, sha256(weights)).exists()
    assert list(api.list_lfs_files(repo)) == []
    assert hub_server.git(repo, "show", "main:model.safetensors") == pointer(weights)

    with pytest.raises(HfHubHTTPError) as gone:
        hf_hub_download(
            repo, "model.safetensors", endpoint=hub_server.url, token=hub_server.write_token, force_download=True
        )
    assert gone.value.response.status_code == 404


def test_the_client_does_not_check_downloaded_content(hub_server: HubFixture) -> None:
    api = hub_server.api()
    repo = new_repo(hub_server)
    weights = data(40_000, "weights")
    info = api.create_commit(
        repo, [Add(path_in_repo="model.safetensors", path_or_fileobj=weights)], commit_message="one"
    )

    corrupt = bytes(b ^ 1 for b in weights)
    hub_server.tamper(repo, sha256(weights), corrupt)
    assert download(hub_server, repo, "model.safetensors", revision=info.oid) == corrupt  # same size: not noticed
    hub_server.tamper(repo, sha256(weights), weights[:-1])
    with pytest.raises(OSError, match="Consistency check failed"):
        hf_hub_download(
            repo, "model.safetensors", endpoint=hub_server.url, token=hub_server.write_token, force_download=True
        )


def test_missing_things_raise_the_clients_typed_errors(hub_server: HubFixture) -> None:
    api = hub_server.api()
    repo = new_repo(hub_server)
    private = new_repo(hub_server, "private", private=True)

    with pytest.raises(RepositoryNotFoundError):
        api.model_info("acme-ml/nothing")
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download("acme-ml/nothing", "x.bin", endpoint=hub_server.url, token=hub_server.write_token)
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download(private, ".gitattributes", endpoint=hub_server.url, token=hub_server.mallory_token)
    with pytest.raises(RevisionNotFoundError):
        api.model_info(repo, revision="nope")
    with pytest.raises(RevisionNotFoundError):
        hf_hub_download(repo, ".gitattributes", revision="nope", endpoint=hub_server.url, token=hub_server.write_token)
    with pytest.raises(RemoteEntryNotFoundError):
        hf_hub_download(repo, "missing.bin", endpoint=hub_server.url, token=hub_server.write_token)
    with pytest.raises(RemoteEntryNotFoundError):
        list(api.list_repo_tree(repo, "missing"))
    assert api.repo_exists(repo) and not api.repo_exists("acme-ml/nothing")
    assert api.revision_exists(repo, "main") and not api.revision_exists(repo, "nope")
    assert api.file_exists(repo, ".gitattributes") and not api.file_exists(repo, "nope.txt")

    with pytest.raises(HfHubHTTPError) as invalid:
        hub_server.api("hf_invalid").model_info(repo)
    assert invalid.value.response.status_code == 401
    assert not isinstance(invalid.value, RepositoryNotFoundError)

    commit = [Add(path_in_repo="x.txt", path_or_fileobj=b"x")]
    with pytest.raises(HfHubHTTPError, match="make sure you have write access") as reader:
        hub_server.api(hub_server.read_token).create_commit(repo, commit, commit_message="no")
    assert reader.value.response.status_code == 403
    with pytest.raises(HfHubHTTPError) as outsider:
        hub_server.api(hub_server.mallory_token).create_commit(repo, commit, commit_message="no")
    assert outsider.value.response.status_code == 403
    with pytest.raises(HfHubHTTPError) as anonymous:
        hub_server.api(False).create_commit(repo, commit, commit_message="no")
    assert anonymous.value.response.status_code == 401


def batch(hub_server: HubFixture, repo: str, weights: bytes, token: str) -> tuple[list[Any], list[Any], str | None]:
    """The client's LFS batch request announcing ``weights`` for upload to ``repo`` with ``token``."""
    return post_lfs_batch_info(
        [UploadInfo.from_bytes(weights)], token=token, repo_type="model", repo_id=repo, endpoint=hub_server.url
    )


def test_the_storage_keeps_only_a_body_that_is_the_announced_object(hub_server: HubFixture) -> None:
    repo = new_repo(hub_server)
    weights = data(64_000, "weights")
    objects, errors, transfer = batch(hub_server, repo, weights, hub_server.write_token)
    assert (errors, transfer) == ([], "basic")
    href = objects[0]["actions"]["upload"]["href"]
    assert href.startswith(f"{hub_server.url}/")
    session = get_session()

    wrong = session.put(href, content=weights[:-1] + b"!")
    assert wrong.status_code == 400
    assert "does not match" in wrong.json()["error"]
    assert session.put(href, content=weights[:-1]).status_code == 400
    assert session.put(href.replace("signature=", "signature=0"), content=weights).status_code == 403
    assert not hub_server.lfs_path(repo, sha256(weights)).exists()

    assert session.put(href, content=weights).status_code == 200
    assert hub_server.lfs_path(repo, sha256(weights)).read_bytes() == weights
    again, _, _ = batch(hub_server, repo, weights, hub_server.write_token)
    assert "actions" not in again[0]
    with pytest.raises(HfHubHTTPError) as reader:
        batch(hub_server, repo, weights, hub_server.read_token)
    assert reader.value.response.status_code == 403


def test_a_500_on_the_lfs_upload_is_retried_by_the_client(hub_server: HubFixture) -> None:
    api = hub_server.api()
    repo = new_repo(hub_server)
    weights = data(100_000, "weights")
    fault = hub_server.faults.add("PUT", r"^/lfs-storage/", "status", code=500)
    api.create_commit(repo, [Add(path_in_repo="model.safetensors", path_or_fileobj=weights)], commit_message="one")
    assert fault.fired == 1
    assert hub_server.faults.armed == []
    puts = [(record.status, record.bytes_in) for record in hub_server.requests if record.method == "PUT"]
    assert puts == [(500, len(weights)), (200, len(weights))]
    assert hub_server.lfs_path(repo, sha256(weights)).read_bytes() == weights


def test_a_connection_dropped_mid_upload_stores_nothing(hub_server: HubFixture) -> None:
    api = hub_server.api()
    repo = new_repo(hub_server)
    head = api.model_info(repo).sha
    weights = data(400_000, "weights")
    hub_server.faults.add("PUT", r"^/lfs-storage/", "drop", after_bytes=100_000)
    # The client retries a dropped connection; refuse the retry so that the failure surfaces quickly.
    hub_server.faults.add("PUT", r"^/lfs-storage/", "status", code=403)
    with pytest.raises(RuntimeError, match=r"Error while uploading 'model\.safetensors'") as failed:
        api.create_commit(repo, [Add(path_in_repo="model.safetensors", path_or_fileobj=weights)], commit_message="one")
    assert isinstance(failed.value.__cause__, HfHubHTTPError)

    dropped, refused = [record for record in hub_server.requests if record.method == "PUT"]
    assert dropped.dropped
    assert dropped.status == 0
    assert 100_000 <= dropped.bytes_in < len(weights)
    assert refused.status == 403
    assert not hub_server.lfs_path(repo, sha256(weights)).exists()
    assert list((hub_server.root / "lfs" / repo / ".tmp").iterdir()) == []
    assert api.model_info(repo).sha == head


def test_a_download_dropped_midway_is_resumed_with_a_range_request(hub_server: HubFixture) -> None:
    api = hub_server.api()
    repo = new_repo(hub_server)
    # The client hands the body over in 10 MiB chunks and resumes from the last whole chunk it wrote.
    chunk = 10 * 2**20
    weights = data(chunk + 2**20, "weights")
    api.create_commit(repo, [Add(path_in_repo="model.safetensors", path_or_fileobj=weights)], commit_message="one")
    hub_server.faults.add("GET", r"/resolve/", "drop", after_bytes=chunk + 1000)

    assert download(hub_server, repo, "model.safetensors") == weights
    gets = [record for record in hub_server.requests if record.method == "GET" and "/resolve/" in record.path]
    assert [(record.status, record.dropped, record.bytes_out) for record in gets] == [
        (200, True, chunk + 1000),
        (206, False, len(weights) - chunk),
    ]


def test_a_drop_without_after_bytes_cuts_a_response_in_half(hub_server: HubFixture) -> None:
    api = hub_server.api()
    repo = new_repo(hub_server)
    api.create_commit(repo, [Add(path_in_repo="notes.txt", path_or_fileobj=b"x" * 10_000)], commit_message="one")
    url = f"{hub_server.url}/{repo}/resolve/main/notes.txt"
    hub_server.faults.add("GET", r"/resolve/", "drop")
    with pytest.raises(httpx2.RemoteProtocolError, match="peer closed connection"):
        get_session().get(url)
    hub_server.faults.add("HEAD", r"/resolve/", "drop")
    with pytest.raises(httpx2.RemoteProtocolError, match="Server disconnected without sending a response"):
        get_session().head(url)
    cut, nothing = hub_server.requests[-2:]
    assert (cut.method, cut.status, cut.dropped, cut.bytes_out) == ("GET", 200, True, 5_000)
    assert (nothing.method, nothing.status, nothing.dropped) == ("HEAD", 0, True)
    assert get_session().get(url).content == b"x" * 10_000


def test_a_delay_fault_holds_one_request(hub_server: HubFixture) -> None:
    api = hub_server.api()
    repo = new_repo(hub_server)
    fault = hub_server.faults.add("GET", rf"^/api/models/{repo}$", "delay", seconds=0.3)
    started = time.monotonic()
    api.model_info(repo)
    assert time.monotonic() - started >= 0.3
    assert fault.fired == 1
    started = time.monotonic()
    api.model_info(repo)
    assert time.monotonic() - started < 0.3


def test_listings_follow_the_link_header_across_pages(hub_server: HubFixture) -> None:
    api = hub_server.api()
    repo = new_repo(hub_server)
    hub_server.page_size = 2
    api.create_commit(
        repo,
        [Add(path_in_repo=f"shards/{i}.safetensors", path_or_fileobj=data(1000, str(i))) for i in range(5)],
        commit_message="shards",
    )
    api.create_commit(repo, [Add(path_in_repo="config.json", path_or_fileobj=b"{}")], commit_message="config")

    paths = [entry.path for entry in api.list_repo_tree(repo, recursive=True)]
    assert sorted(paths) == sorted(
        [".gitattributes", "config.json", "shards", *(f"shards/{i}.safetensors" for i in range(5))]
    )
    assert len([record for record in hub_server.requests if "/tree/" in record.path]) == 4
    assert [commit.title for commit in api.list_repo_commits(repo)] == ["config", "shards", "initial commit"]
    assert len(list(api.list_lfs_files(repo))) == 5
    assert len([record for record in hub_server.requests if record.path.endswith("/lfs-files")]) == 3


def test_unserved_endpoints_are_recorded(hub_server: HubFixture) -> None:
    with pytest.raises(HfHubHTTPError) as unserved:
        hub_server.api().dataset_info("acme-ml/data")
    assert unserved.value.response.status_code == 404
    assert "does not serve GET /api/datasets/acme-ml/data" in str(unserved.value)
    response = get_session().post(f"{hub_server.url}/api/models/acme-ml/data/settings")
    assert response.status_code == 404
    assert hub_server.unserved == ["GET /api/datasets/acme-ml/data", "POST /api/models/acme-ml/data/settings"]
    hub_server.unserved.clear()


def test_the_server_runs_as_a_subprocess(tmp_path: Path) -> None:
    command = [
        sys.executable,
        "-m",
        "tests.servers.hub",
        "--root",
        str(tmp_path / "hub"),
        "--token",
        "hf_sub:carol:lab:write",
    ]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", url)
        api = HfApi(endpoint=url, token="hf_sub")
        assert api.whoami()["name"] == "carol"
        assert api.create_repo("lab/weights").repo_id == "lab/weights"
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=15)
    # uvicorn shuts down gracefully on SIGTERM, then re-raises it.
    assert process.returncode in (0, -signal.SIGTERM), stderr
    assert (tmp_path / "hub" / "repos" / "lab" / "weights.git").is_dir()


def _rebuilt_by_git(hub: HubFixture, repo: str, tmp: Path) -> str:
    """The root tree git's own ``update-index`` + ``write-tree`` make of the files at ``main``."""
    git_dir = ["git", f"--git-dir={hub.root / 'repos' / f'{repo}.git'}"]
    env = {"GIT_INDEX_FILE": str(tmp / "rebuilt-index"), "PATH": "/usr/bin:/bin", "HOME": str(tmp)}
    listing = subprocess.run([*git_dir, "ls-tree", "-r", "-z", "main"], capture_output=True, check=True).stdout
    info = b"".join(record.replace(b" blob ", b" ", 1) + b"\0" for record in listing.split(b"\0") if record)
    subprocess.run([*git_dir, "update-index", "-z", "--index-info"], input=info, env=env, check=True)
    return subprocess.run([*git_dir, "write-tree"], env=env, capture_output=True, check=True, text=True).stdout.strip()


def test_objects_are_what_git_plumbing_writes_and_packed_ones_are_still_served(
    hub_server: HubFixture, tmp_path: Path
) -> None:
    api = hub_server.api()
    repo = new_repo(hub_server)
    files = {"a.txt": b"1", "a/b.json": b"{}", "a-b/c": b"3", "a/d/e": b"4", "\u00e9t\u00e9.json": b"5"}
    weights = data(3000, "weights")
    adds = [Add(path_in_repo=path, path_or_fileobj=content) for path, content in files.items()]
    info = api.create_commit(
        repo, [*adds, Add(path_in_repo="m.safetensors", path_or_fileobj=weights)], commit_message="Add"
    )
    api.create_tag(repo, tag="v1", tag_message="First")
    started = time.time()

    assert hub_server.git(repo, "fsck", "--strict", "--no-dangling") == ""
    assert hub_server.git(repo, "rev-parse", "main^{tree}").strip() == _rebuilt_by_git(hub_server, repo, tmp_path)
    assert hub_server.git(repo, "cat-file", "-t", "v1").strip() == "tag"
    author, committer, when = hub_server.git(repo, "log", "-1", "--format=%an <%ae>|%cn <%ce>|%ct", "main").split("|")
    assert author == committer == "alice <alice@users.noreply.huggingface.co>"
    assert started - 60 < int(when) <= started
    listing = hub_server.git(repo, "ls-tree", "-r", "-l", "-z", "main").split("\0")[:-1]
    sizes = {line.split("\t")[1]: int(line.split()[3]) for line in listing}
    assert _file_sizes(api, repo) == {**sizes, "m.safetensors": len(weights)}
    assert {path: download(hub_server, repo, path) for path in files} == files

    hub_server.git(repo, "repack", "-a", "-d", "-q")
    hub_server.git(repo, "prune-packed")
    assert not list((hub_server.root / "repos" / f"{repo}.git" / "objects").glob("??/*"))
    with HubFixture(hub_server.root, DEFAULT_TOKENS) as restarted:  # nothing cached: every object is packed
        assert _file_sizes(restarted.api(), repo) == {**sizes, "m.safetensors": len(weights)}
        assert {path: download(restarted, repo, path, revision=info.oid[:7]) for path in files} == files
        assert restarted.api().model_info(repo).sha == info.oid
        later = restarted.api().create_commit(
            repo, [Add(path_in_repo="a/f", path_or_fileobj=b"6")], commit_message="More"
        )
        assert _file_sizes(restarted.api(), repo) == {**sizes, "m.safetensors": len(weights), "a/f": 1}
    assert hub_server.git(repo, "rev-parse", "main^").strip() == info.oid
    assert hub_server.git(repo, "rev-parse", "main").strip() == later.oid
    assert hub_server.git(repo, "fsck", "--strict", "--no-dangling") == ""


def _file_sizes(api: HfApi, repo: str) -> dict[str, int]:
    return {entry.path: entry.size for entry in api.list_repo_tree(repo, recursive=True) if isinstance(entry, RepoFile)}


def test_refs_listed_after_every_move_are_git_s_refs(hub_server: HubFixture) -> None:
    api = hub_server.api()
    repo = new_repo(hub_server)

    def listed() -> dict[str, str]:
        refs = api.list_repo_refs(repo)
        return {f"refs/heads/{b.name}": b.target_commit for b in refs.branches} | {
            f"refs/tags/{t.name}": t.target_commit for t in refs.tags
        }

    def in_git() -> dict[str, str]:
        out = hub_server.git(repo, "for-each-ref", "--format=%(refname) %(objectname) %(*objectname)")
        return {name: peeled or oid for name, oid, peeled in (f"{line} ".split(" ")[:3] for line in out.splitlines())}

    first = api.create_commit(repo, [Add(path_in_repo="a", path_or_fileobj=b"1")], commit_message="a").oid
    moves: list[Callable[[], object]] = [
        lambda: api.create_branch(repo, branch="dev", revision=first),
        lambda: api.create_tag(repo, tag="v1", tag_message="annotated", revision="dev"),
        lambda: api.create_tag(repo, tag="light"),
        lambda: api.create_commit(repo, [Add(path_in_repo="b", path_or_fileobj=b"2")], commit_message="b"),
        lambda: api.delete_tag(repo, tag="light"),
        lambda: hub_server.move_branch(repo, "dev", "main"),  # by hand: the server did not move it
        lambda: api.create_commit(repo, [Delete(path_in_repo="a")], commit_message="c", revision="dev"),
        lambda: api.delete_branch(repo, branch="dev"),
    ]
    seen = [listed()]
    for move in moves:
        move()
        seen.append(listed())
        assert seen[-1] == in_git(), move
    assert [len(refs) for refs in seen] == [1, 2, 3, 4, 4, 3, 3, 3, 2]
    assert seen[2]["refs/tags/v1"] == first != seen[4]["refs/heads/main"] == seen[6]["refs/heads/dev"]
