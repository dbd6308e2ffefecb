"""What regops publishes — the review page, the PR comment, the drift issue, the canary evidence, the model card —
rendered by a real CommonMark renderer (markdown-it-py, with GitHub's tables, strikethrough and autolinks, raw HTML
allowed as GitHub allows it), to show that a value taken from a file or a pull request is text, never markup; and
that the bot edits only the comments and issues its own login wrote.

Where markdown-it and GitHub differ (GitHub also @mentions, links #123 and GH-123 references, ``www.`` and e-mail
addresses in text), the rendered text is checked with GitHub's rules for those.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from github import GithubException
from huggingface_hub import HfApi
from markdown_it import MarkdownIt
from markdown_it.token import Token

from regops import api
from regops.adapters.github import GitHub, GitHubError
from regops.cli import main
from regops.publish import (
    REVIEW_MARKER,
    WORD_JOINER,
    drift_issue,
    lineage_mermaid,
    md_code,
    md_text,
    model_card,
    review_page,
)
from regops.registry import LineageNode, Registry
from regops.sync import Difference, SyncResult
from tests.conftest import Tree, commit, git, run_regops, weights
from tests.servers.github_fixtures import GitHubFixture
from tests.test_canary_check import check_and_pr, metrics_document, stage_canary
from tests.test_github import REPO, open_pull, with_origin

# One line each: what a note, a name or a message could carry to fake, ping, track or break the page.
HOSTILE = (
    "# ✅ approved by the owners",
    "@alice @acme/ml please merge",
    '<img src="https://tracker.example/p.gif">',
    "<!-- regops:report -->",
    "[notes](https://evil.example/a) ![x](https://evil.example/i.png)",
    "a | b | c",
    "fixes #12, GH-7 and acme/models#3",
    "https://evil.example www.evil.example bob@evil.example",
    "**bold** _it_ ~~gone~~ `code` $x^2$",
    "> [!NOTE] quoted",
    "- item",
    "1. first",
    "&lt;b&gt; &#64;alice",
)
# An artifact path: relative, no "//", "." or ".." segment.
PATH = "<img src=x onerror=alert(1)> @alice **#12** [a](b).json"
# Over several lines: a heading, a table row and a script of its own.
MULTILINE = "first line\n## second line\n| x | y |\n\n<script>alert(1)</script>"

MD = MarkdownIt("commonmark", {"html": True, "linkify": True}).enable(["table", "strikethrough", "linkify"])
MD.linkify.set({"fuzzy_link": False})  # GitHub links www. and scheme:// URLs only (and e-mails: checked below)

# GitHub's own rules on text outside code: @mentions, issue references, www. and scheme URLs, e-mail addresses.
MENTION = re.compile(r"(?<![A-Za-z0-9_])@[A-Za-z0-9]")
REFERENCE = re.compile(r"#\d|(?i:\bGH-\d)")
URL = re.compile(r"(?i)\bwww\.|[a-z][a-z0-9+.-]*://")
EMAIL = re.compile(r"[\w.+-]@[\w-]+\.[\w-]")


@dataclass
class Rendered:
    markdown: str
    tokens: list[Token]
    html: str

    def walk(self) -> list[Token]:
        return [t for token in self.tokens for t in (token, *(token.children or ()))]

    def headings(self) -> list[tuple[str, str]]:
        return [(t.tag, self.tokens[i + 1].content) for i, t in enumerate(self.tokens) if t.type == "heading_open"]

    def texts(self) -> list[str]:
        """The text GitHub would scan for mentions and references: each inline's text outside code."""
        return ["".join(c.content for c in t.children or () if c.type == "text") for t in self.tokens if t.children]

    def visible(self) -> str:
        """What a reader sees, line by line (one line per inline)."""
        return "\n".join(_seen(token) for token in self.tokens if token.type == "inline")

    def cells(self) -> list[list[str]]:
        """Each table row's cells, as shown."""
        rows: list[list[str]] = []
        in_row = False
        for token in self.tokens:
            in_row = token.type == "tr_open" or (in_row and token.type != "tr_close")
            if token.type == "tr_open":
                rows.append([])
            elif token.type == "inline" and in_row:
                rows[-1].append(_seen(token))
        return rows


def _seen(inline: Token) -> str:
    """An inline's text and code as shown (emphasis marks gone), word joiners and runs of spaces collapsed."""
    parts = [
        c.content if c.type in ("text", "code_inline") else " "
        for c in inline.children or ()
        if c.type in ("text", "code_inline", "softbreak", "hardbreak")
    ]
    return " ".join("".join(parts).replace(WORD_JOINER, "").split())


def render(markdown: str) -> Rendered:
    return Rendered(markdown, MD.parse(markdown), MD.render(markdown))


def shown(value: str) -> str:
    return " ".join(value.split())


def assert_inert(page: Rendered, values: tuple[str, ...] | list[str], *, markers: tuple[str, ...] = ()) -> None:
    """Every value is shown as written, and nothing of it became markup: no HTML but regops' own markers, no link
    or image, no @mention, reference or autolink in text."""
    raw = [t.content.strip() for t in page.walk() if t.type in ("html_block", "html_inline")]
    assert raw == list(markers), raw
    assert [t.type for t in page.walk() if t.type in ("link_open", "image")] == []
    assert "<a " not in page.html and "<img" not in page.html and "<script" not in page.html
    for text in page.texts():
        for rule in (MENTION, REFERENCE, URL, EMAIL):
            assert rule.search(text) is None, (rule.pattern, text)
    visible = page.visible()
    for value in values:
        assert shown(value) in visible, (value, visible)


# --- the helpers themselves, in every context they are used in ------------------------------------------------------


@pytest.mark.parametrize("value", [*HOSTILE, MULTILINE])
def test_a_value_is_text_in_a_paragraph_a_list_a_heading_and_a_table_cell(value: str) -> None:
    for markdown in (md_text(value), f"- {md_text(value)}", f"## {md_text(value)}", f"- {md_code(value)}"):
        page = render(markdown)
        assert_inert(page, [value])
        assert len(page.headings()) == (1 if markdown.startswith("##") else 0), markdown
        assert [t.type for t in page.tokens if t.type.endswith("_open")] in (
            [],
            ["paragraph_open"],
            ["heading_open"],
            ["bullet_list_open", "list_item_open", "paragraph_open"],
        ), markdown
    table = render(f"| name | value |\n|---|---|\n| x | {md_text(value)} |\n| y | z |\n")
    assert table.cells() == [["name", "value"], ["x", shown(value)], ["y", "z"]]
    assert_inert(table, [value])


def test_a_code_span_holds_any_run_of_backticks_and_the_word_joiner_is_invisible() -> None:
    for value in ("`", "``x``", " a ", "a ` b", "`lead", "trail`"):
        [code] = [t for t in render(md_code(value)).walk() if t.type == "code_inline"]
        assert code.content == value
    assert md_text("sentiment@1.1.0") == f"sentiment@{WORD_JOINER}1.1.0", "an e-mail to GitHub, shown as written"
    assert md_text("latency_ms 1.4.0-rc.1") == "latency_ms 1.4.0-rc.1", "plain values stay plain"


def test_a_lineage_label_cannot_leave_its_node_nor_the_mermaid_block() -> None:
    evil = 'x"]\n```\n# ✅ approved <img src=x> `y`'
    block = f"```mermaid\n{lineage_mermaid([LineageNode(evil, 0, dataset=evil), LineageNode('b@1.0.0', 1)])}\n```\n"
    page = render(block)
    assert [t.type for t in page.tokens] == ["fence"]
    lines = page.tokens[0].content.splitlines()
    assert lines[0] == "flowchart BT" and len(lines) == 5, lines
    assert re.fullmatch(r'  n0\["[^"`<>\n]*"\]', lines[1]), lines[1]
    assert re.fullmatch(r'  d0\[\("[^"`<>\n]*"\)\] -\. trained \.-> n0', lines[2]), lines[2]
    assert "#34;" in lines[1] and "#96;" in lines[1] and "#60;" in lines[1]


# --- the review page and the model card ------------------------------------------------------------------------------


def hostile_tree(tree: Tree) -> None:
    """sentiment 1.3.0 (the canary) with hostile hyperparameters, a hostile metric, file names and canary summary;
    a hostile description, task and license; a hostile creator of 1.2.0 (prod)."""
    params = {f"p{i}": value for i, value in enumerate(HOSTILE)} | {HOSTILE[0]: MULTILINE, HOSTILE[5]: 1}
    path = "models/sentiment/1.3.0.yaml"
    text = re.sub(r"hyperparameters:\n(  .*\n)+", lambda _: f"hyperparameters: {json.dumps(params)}\n", tree.read(path))
    text = text.replace("scores: {", f"scores: {{{json.dumps(HOSTILE[1])}: 0.5, ")
    text = text.replace("{path: config.json,", f"{{path: {json.dumps(PATH)},")
    text = text.replace("result: pending", f"result: pending, summary: {json.dumps(HOSTILE[0] + ' ' + HOSTILE[3])}")
    tree.write(path, text)
    tree.replace(
        "models/sentiment/1.2.0.yaml", "created_by: training-bot[bot]", f"created_by: {json.dumps(HOSTILE[6])}"
    )
    tree.replace(
        "models/sentiment/model.yaml",
        "description: The sentiment model.",
        f"description: {json.dumps(HOSTILE[4] + chr(10) * 2 + MULTILINE)}\nlicense: {json.dumps(HOSTILE[7])}",
    )
    tree.replace("models/sentiment/model.yaml", "task: text-classification", f"task: {json.dumps(HOSTILE[8])}")


def test_the_review_page_shows_hostile_values_as_text(tree: Tree) -> None:
    hostile_tree(tree)
    registry = Registry.load(tree.root)
    page = render(review_page(registry, [(registry.version("sentiment", "1.3.0"), "staging", "prod")]))
    assert_inert(page, [*HOSTILE, MULTILINE, PATH], markers=(REVIEW_MARKER,))
    assert [tag for tag, _ in page.headings()] == ["h2", "h3", "h3", "h3", "h3", "h3", "h3"]
    assert [text.split(" ")[0].rstrip(":") for _, text in page.headings()] == [
        "`sentiment@1.3.0`",
        "Evals",
        "Hyperparameters",
        "Data",
        "Weights",
        "Canary",
        "Lineage",
    ]
    # The scores table: the hostile metric is one cell of a row as wide as the header.
    rows = page.cells()
    assert rows[0] == ["metric", "1.3.0", "current prod 1.2.0"]
    assert ["accuracy (primary)", "0.94", "0.93 (+0.01 ▲)"] in rows
    assert [HOSTILE[1], "0.5", "-"] in rows
    # The canary's summary is text in regops' heading, not a heading or a marker of its own.
    assert page.headings()[5][1].startswith(r"Canary: **pending**: \# ✅ approved")


def test_the_model_card_body_is_text_and_its_front_matter_yaml_data(tree: Tree) -> None:
    hostile_tree(tree)
    tree.replace("models/sentiment/1.2.0.yaml", "scores: {", f"scores: {{{json.dumps(MULTILINE)}: 0.5, ")
    card = model_card(Registry.load(tree.root), "sentiment")
    lines = card.split("\n")
    end = lines.index("---", 1)
    meta = yaml.safe_load("\n".join(lines[1:end]))
    assert (meta["license"], meta["license_name"], meta["pipeline_tag"]) == ("other", HOSTILE[7], HOSTILE[8])
    metrics = meta["model-index"][0]["results"][0]["metrics"]
    assert {m["type"] for m in metrics} == {"accuracy", "latency_ms", MULTILINE}

    page = render("\n".join(lines[end + 1 :]))
    assert_inert(page, [HOSTILE[4], HOSTILE[6], *MULTILINE.split("\n\n")])
    assert [text for _, text in page.headings()] == ["sentiment", "Stages", "Versions", "Lineage"]
    versions = page.cells()[4:]  # after the stages table (a header, three rows): the versions table
    assert versions[0] == ["version", "stage", "created", "by", "accuracy", "trained on", "weights"]
    [prod] = [row for row in versions if row[0] == "1.2.0"]
    assert prod[1:4] == ["prod", "2026-03-15 10:00", HOSTILE[6]]


# --- the PR comment, through `regops pr report` against the local GitHub ---------------------------------------------


# What a file name can carry: all but a slash.
STRAY = f"{HOSTILE[0]} @alice <img src=x> [a](b) #1 | x"


def hostile_pr(repo: Path, gh: GitHubFixture, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> int:
    """alice's pull request that registers sentiment 1.2.0 with hostile hyperparameters and moves it to dev at once,
    and adds a stray file whose name is hostile (a problem the comment lists)."""
    git(repo, "checkout", "-q", "-b", "new-version")
    weights(tmp_path / "out-1.2.0", "1.2.0")
    params = {f"p{i}": value for i, value in enumerate(HOSTILE)} | {HOSTILE[1]: MULTILINE}
    (tmp_path / "hostile.json").write_text(json.dumps(params))
    (tmp_path / "better.json").write_text('{"accuracy": 0.97, "latency_ms": 39}')
    run_regops(
        capsys, repo, "register", "sentiment", "--artifacts", str(tmp_path / "out-1.2.0"),
        "--evals", str(tmp_path / "better.json"), "--params", str(tmp_path / "hostile.json"),
        "--dataset", "reviews@2025-09-08", "--version", "1.2.0", "--by", "training-bot[bot]",
    )  # fmt: skip
    run_regops(capsys, repo, "auto-promote", "--by", "github-actions[bot]")
    (repo / "registry/datasets/reviews" / f"{STRAY}.yaml").write_text("name: reviews\n")
    commit(repo, "sentiment 1.2.0, in dev")
    return open_pull(gh, repo, author="alice", branch="new-version")


def test_pr_report_shows_a_new_version_moved_in_the_same_pr_and_escapes_its_values_and_problems(
    history_repo: Path, gh: GitHubFixture, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    number = hostile_pr(history_repo, gh, tmp_path, capsys)
    assert main(["pr", "report", "--pr", str(number)]) == 0, capsys.readouterr().err
    [(author, body)] = gh.comments(REPO, number)
    assert author == gh.bot
    page = render(body)
    assert_inert(page, [*HOSTILE, MULTILINE], markers=("<!-- regops:report -->",))
    # auto-promote moved the new version to dev and archived the old dev: both shown, from the pull request's head.
    assert [text for tag, text in page.headings() if tag == "h2"] == [
        "regops validate",
        "`sentiment@1.1.0`: dev → archived",
        "`sentiment@1.2.0`: candidate → dev",
    ]
    assert [text.split(" ")[0] for tag, text in page.headings() if tag == "h3"] == 2 * [
        "Evals",
        "Hyperparameters",
        "Data",
        "Weights:",
        "Lineage",
    ]
    # Each problem is one item of the first list, the hostile file name whole in its code span.
    stray = f"registry/datasets/reviews/{STRAY}.yaml:1"
    start = next(i for i, t in enumerate(page.tokens) if t.type == "bullet_list_open")
    end = next(i for i, t in enumerate(page.tokens) if t.type == "bullet_list_close")
    items = [_seen(t) for t in page.tokens[start:end] if t.type == "inline"]
    assert len(items) == 3 and all(item.startswith(stray + " ") for item in items), items


# --- the drift issue, through `regops drift --issue` against the local Hub and GitHub --------------------------------


def test_the_drift_issue_shows_hostile_file_names_as_text(tree: Tree, hub_env: HfApi, gh: GitHubFixture) -> None:
    hub_env.create_repo("acme-ml/sentiment", private=True)
    revision = hub_env.upload_file(
        path_or_fileobj=b"weights", path_in_repo="model.safetensors", repo_id="acme-ml/sentiment"
    ).oid
    tree.replace(
        "regops.yaml", "storage: {backend: local, path: .regops/store}", "storage: {backend: hf, org: acme-ml}"
    )
    path = "models/sentiment/1.2.0.yaml"
    tree.replace(path, "storage: {backend: local, tier: hot}", f"storage: {{backend: hf, repo: acme-ml/sentiment, "
                 f"revision: {revision}, tier: hot}}")  # fmt: skip
    names = [PATH, *(HOSTILE[i] for i in (0, 1, 3, 5, 6, 9, 10, 11, 12))]
    files = "".join(f"    - {{path: {json.dumps(name)}, size: 1, sha256: {json.dumps('0' * 64)}}}\n" for name in names)
    tree.replace(path, "  storage:", files + "  storage:")

    result = api.drift(registry=tree.root, issue=True)
    messages = [d.message for d in result.differences if d.kind == "weights"]
    assert len(messages) == 2 + len(names), messages  # model.safetensors and config.json differ too
    [issue] = [i for i in gh.client().get_repo(REPO).get_issues(state="all") if i.pull_request is None]
    page = render(issue.body)
    assert_inert(page, messages, markers=("<!-- regops:drift -->",))
    assert [t.type for t in page.tokens if t.type.endswith("list_open")] == ["bullet_list_open"]
    assert len([t for t in page.tokens if t.type == "list_item_open"]) == len(result.differences)


def test_the_drift_issue_escapes_any_difference_s_message() -> None:
    differences = [Difference("m", "card", "r", "README.md", None, None, value) for value in (*HOSTILE, MULTILINE)]
    page = render(drift_issue(SyncResult(differences, [], check=True)))
    assert_inert(page, [*HOSTILE, MULTILINE])
    assert len([t for t in page.tokens if t.type == "list_item_open"]) == len(differences)
    assert page.headings() == []


# --- the canary evidence, through `regops canary check` and `regops canary pr` ---------------------------------------------------


def test_the_canary_pull_request_shows_what_the_metrics_source_said_as_text(
    history_repo: Path, gh: GitHubFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    """The metrics document is not the registry's to trust: a bucket bound it names reaches the evidence as text."""
    stage_canary(history_repo, capsys, "{provider: json, path: metrics.json}")
    document = metrics_document(canary_errors=60)
    buckets = document["models"]["sentiment"]["1.1.0"]["latency"]["buckets"]
    buckets[HOSTILE[0] + " " + HOSTILE[2] + " " + HOSTILE[1]] = buckets.pop("0.1")
    (history_repo / "metrics.json").write_text(json.dumps(document))
    commit(history_repo, "metrics")
    with_origin(history_repo, gh)
    assert "pull request: opened #1" in check_and_pr(capsys, code=1)
    body = gh.client().get_repo(REPO).get_pull(1).body
    page = render(body)
    assert_inert(page, [HOSTILE[0], HOSTILE[2], HOSTILE[1]], markers=(REVIEW_MARKER,))
    assert page.headings()[0] == ("h3", "Canary: `sentiment@1.1.0` (canary) vs prod `1.0.0`: fail")
    rows = page.cells()
    assert rows[0][:3] == ["guardrail", "kind", "verdict"] and [len(row) for row in rows[:3]] == [8, 8, 8]
    assert rows[2][:3] == ["latency", "latency", "inconclusive"] and rows[3][0] == "metric", "then the review page"


# --- the bot edits only what its own login wrote --------------------------------------------------------------------

FAKE = "<!-- regops:report -->\n## ✅ approved by the owners"


def test_github_tells_each_kind_of_token_its_login_where_get_user_is_refused(github_server: GitHubFixture) -> None:
    """A user's token, a GitHub App's installation token and a workflow's job token: GraphQL's viewer names each."""
    github_server.add_token("ghs_job", {"login": "github-actions[bot]", "repos": {REPO: "write"}})
    logins = {
        token: GitHub(REPO, token=token, api_url=github_server.api_url).login
        for token in (github_server.alice_token, github_server.app_token, "ghs_job")
    }
    assert list(logins.values()) == ["alice", github_server.bot, "github-actions[bot]"]
    with pytest.raises(GithubException) as refused:
        github_server.client(github_server.app_token).get_user().login  # noqa: B018 - the request is the point
    assert refused.value.status == 403
    with pytest.raises(GitHubError, match="GitHub rejected GITHUB_TOKEN"):
        _ = GitHub(REPO, token="ghp_unknown", api_url=github_server.api_url).login


@pytest.fixture
def marked_pr(history_repo: Path, gh: GitHubFixture, capsys: pytest.CaptureFixture[str]) -> int:
    """alice's pull request moving sentiment 1.1.0 to staging, where mallory commented first, with regops' marker."""
    git(history_repo, "checkout", "-q", "-b", "promote")
    run_regops(capsys, history_repo, "promote", "sentiment@1.1.0", "--to", "staging", "--notes", "n", "--by", "alice")
    number = open_pull(gh, history_repo, author="alice", branch="promote")
    gh.client(gh.mallory_token).get_repo(REPO).get_issue(number).create_comment(FAKE)
    return number


def test_pr_report_leaves_someone_else_s_comment_with_the_marker_alone_and_writes_its_own(
    gh: GitHubFixture, marked_pr: int, capsys: pytest.CaptureFixture[str]
) -> None:
    number = marked_pr

    for action in ("created", "unchanged"):
        assert main(["pr", "report", "--pr", str(number)]) == 0
        assert capsys.readouterr().out == f"pull request #{number}: regops comment {action}\n"
    comments = gh.comments(REPO, number)
    assert comments[0] == ("mallory", FAKE)
    assert [author for author, _ in comments] == ["mallory", gh.bot]
    assert "No problems." in comments[1][1]


def test_pr_report_with_a_token_whose_login_github_does_not_tell_edits_nothing(
    gh: GitHubFixture, marked_pr: int, capsys: pytest.CaptureFixture[str]
) -> None:
    number = marked_pr
    gh.faults.add("POST", r"^/api/graphql$", "status", times=10, code=502)
    before = len(gh.requests)

    assert main(["pr", "report", "--pr", str(number)]) == 1
    err = capsys.readouterr().err
    assert "cannot find out which login GITHUB_TOKEN writes as in acme/models: GitHub answered 502" in err, err
    assert gh.comments(REPO, number) == [("mallory", FAKE)]
    writes = [r for r in gh.requests[before:] if r.method in ("POST", "PATCH") and r.path.startswith("/api/v3")]
    assert writes == []


def test_the_drift_issue_is_the_bot_s_own_and_someone_else_s_issue_with_the_marker_is_left_alone(
    history_repo: Path, gh: GitHubFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = "<!-- regops:drift -->\nAll clear, nothing to see."
    planted = gh.client(gh.mallory_token).get_repo(REPO).create_issue(title="regops: drift", body=fake).number

    assert main(["drift", "--issue"]) == 1
    issues = {i.number: i for i in gh.client().get_repo(REPO).get_issues(state="all") if i.pull_request is None}
    [ours] = [n for n in issues if n != planted]
    assert (issues[ours].user.login, issues[ours].state) == (gh.bot, "open")
    assert "serving manifest is missing" in issues[ours].body

    run_regops(capsys, history_repo, "sync")
    assert main(["drift", "--issue"]) == 0
    repo = gh.client().get_repo(REPO)
    assert repo.get_issue(ours).state == "closed"
    mallory_s = repo.get_issue(planted)
    assert (mallory_s.state, mallory_s.body, mallory_s.user.login) == ("open", fake, "mallory")
    assert gh.comments(REPO, planted) == []
