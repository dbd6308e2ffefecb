"""Changes made as pull requests: branch, commit, push, open; and commits of what regops changed on main.

A write made with ``--pr`` (:func:`as_pull_request`, :func:`on_branch`) is made
on a new branch, committed, pushed and proposed with the review page as its
body; :func:`commit` commits and pushes what regops changed on main. Judging
pull requests is :mod:`regops.flows.pulls`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from regops import changes, codeowners, publish, serving
from regops.adapters import git
from regops.errors import RegopsError
from regops.lifecycle import Plan
from regops.registry import Registry
from regops.workspace import noreply, open_registry, registry_at, workflow_bot, write

if TYPE_CHECKING:
    from regops.adapters.github import GitHub, Pull
    from regops.workspace import RegistryArg

__all__ = ["as_pull_request", "commit", "on_branch"]


def as_pull_request(
    registry: RegistryArg,
    plan_it: Callable[[Registry], Plan],
    *,
    title: str,
    branch: str,
    labels: list[str],
    model: str,
    by: str,
    github: GitHub | None = None,
) -> Plan:
    """A write (promote, rollback) made as a pull request: see :func:`on_branch`."""
    opened = open_registry(registry)
    plan, pull = on_branch(
        opened,
        lambda: write(opened.root, plan_it, dry_run=False),
        title=title,
        branch=branch,
        labels=labels,
        model=model,
        by=by,
        github=github,
        rename=True,
    )
    plan.notes.append(f"opened pull request #{pull.number}: {pull.url}")
    return plan


T = TypeVar("T")


def on_branch(
    opened: Registry,
    change: Callable[[], T],
    *,
    title: str,
    branch: str,
    labels: list[str],
    model: str,
    by: str,
    github: GitHub | None = None,
    preface: str = "",
    author: str | None = None,
    rename: bool = False,
) -> tuple[T, Pull]:
    """Make ``change`` on a new branch, commit and push it, and open the pull request whose body is the review page.

    The branch is one regops creates: when ``branch`` exists already, in the
    checkout or on origin, ``rename`` picks the first free ``branch-2``,
    ``branch-3``, … and otherwise the call is refused (the canary's branch names
    its decision, so it is never renamed). The push is a plain push of that new
    branch, so the pull request carries regops' commit and nothing else. The
    checkout returns to the branch it was on (where the change is not applied);
    when anything fails before the push is done, the new branch is deleted and
    the registry is as it was. The model's owners are asked for review (teams by
    slug), the author aside. New versions (a registration) are shown against the
    current holders as the transitions of a promotion are. ``preface`` goes above
    the review page; ``author`` (a login) makes the commit, else git's configured user.
    """
    # Imported here: PyGithub costs ~0.2 s, paid only by the verbs that talk to GitHub.
    from regops.adapters.github import GitHub

    root = opened.root.parent
    folder = opened.root.relative_to(root).as_posix()
    if dirty := git.changed(root, folder):
        raise RegopsError(f"{folder}/ has uncommitted changes ({dirty[0].strip()}, …): commit or stash them first")
    gh = github or GitHub()
    base = git.current_branch(root)
    branch = git.new_branch_name(root, branch, suffix=rename)
    with _new_branch(root, folder, base=base, branch=branch):
        result = change()
        git.commit_paths(root, [folder], title, author=author, email=noreply(author, gh))
        page = _review_page(opened, base)
        _push(root, branch, base)
    body = f"{preface}\n\n{page}" if preface else page
    pull = _open_pull(gh, opened, model=model, by=by, branch=branch, base=base, title=title, body=body, labels=labels)
    return result, pull


def _review_page(opened: Registry, base: str) -> str:
    """The review page of what the branch's commit changes against ``base``: the moves it makes, or the versions
    it registers."""
    root = opened.root.parent
    head = open_registry(opened.root)
    with registry_at(opened, base) as (before, files):
        shown = [(before.version(m.model, m.version), m.source, m.target) for m in changes.pr_moves(head, files)]
        new = [r for r in head.iter_versions() if r.path.relative_to(root).as_posix() not in files]
        page = (
            publish.review_page(before, shown)
            if shown
            else publish.review_page(head, [(r, "registered", "candidate") for r in new])
        )
    return page


def _push(root: Path, branch: str, base: str) -> None:
    try:
        git.push_new_branch(root, branch)
    except git.GitError as e:
        raise git.GitError(
            f"{e}; nothing was pushed: regops deleted its branch {branch} and returned to {base}, the registry "
            "as it was. Fix what git says and run the same command again"
        ) from e


def _open_pull(
    gh: GitHub,
    opened: Registry,
    *,
    model: str,
    by: str,
    branch: str,
    base: str,
    title: str,
    body: str,
    labels: list[str],
) -> Pull:
    """Open the pull request of the pushed ``branch``, asking the model's owners for review (teams by slug), the
    author aside; when GitHub refuses, the local branch goes and the message says what to do with the pushed one."""
    root = opened.root.parent
    owners = opened.model(model).raw["owners"]
    reviewers = [o for o in owners if "/" not in o and o != by]
    teams = [o.split("/", 1)[1] for o in owners if "/" in o]
    try:
        return gh.open_pull(
            head=branch, base=base, title=title, body=body, labels=labels, reviewers=reviewers, teams=teams
        )
    except RegopsError as e:
        git.delete_branch(root, branch)
        raise RegopsError(
            f"{e}; the change is pushed as branch {branch} of origin: open the pull request from it, or delete it "
            f"(`git push origin --delete {branch}`); running the same command again makes a new branch"
        ) from e


@contextmanager
def _new_branch(root: Path, folder: str, *, base: str, branch: str) -> Iterator[None]:
    """Work on ``branch``, created from ``base``, and return to ``base``; when the work fails, its changes under
    ``folder`` and the branch are thrown away, so nothing of it is left to block the next run."""
    git.checkout(root, branch, create=True)
    done = False
    try:
        yield
        done = True
    finally:
        if not done:
            git.discard(root, folder)
        git.checkout(root, base)
        if not done:
            git.delete_branch(root, branch)


def commit(
    *, registry: RegistryArg = "registry", message: str, push: bool = False, by: str | None = None
) -> str | None:
    """Commit what regops changed (registry/, serving.json, CODEOWNERS) and, with ``push``, push it.

    Nothing changed, nothing committed (None). In GitHub Actions without ``by``
    the commit is made as ``github-actions[bot]``. A push that finds the branch
    moved on rebases onto it and tries again.
    """
    opened = open_registry(registry)
    root = opened.root.parent
    author = workflow_bot(by)
    paths = [opened.root.relative_to(root).as_posix(), serving.MANIFEST, codeowners.CODEOWNERS]
    sha = git.commit_paths(root, paths, message, author=author, email=noreply(author))
    if sha is not None and push:
        git.push(root, branch=git.current_branch(root))
    return sha
