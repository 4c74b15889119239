"""The annotation web app in real headless Chromium (Debian's package, driven by
Playwright): sign in with a personal token, label by keyboard, watch the model take over
the queue, mark spans and read their offsets back through the API, and stay inside what a
person's role allows. With HLOPS_SCREENSHOTS=docs/img the labelling pages are saved for
docs/annotate.md.

One server and one apply of the examples for the module; ``POST /_test/train`` waits for
the trainer instead of sleeping.
"""

from __future__ import annotations

import pytest

from web_helpers import (
    ENTITIES, SENTIMENT, TOPICS, apply_examples, datapoints, export, project, token, train,
)

ANNOTATOR = "annotator1@example.com"
ADMIN = "lead@example.com"


@pytest.fixture(scope="module")
def work(server, tmp_path_factory):
    return apply_examples(server, tmp_path_factory.mktemp("web"))


def shown(tab) -> int:
    return int(tab.page.inner_text("#datapoint-id"))


def confidences(server, pid: int, rows: list[dict]) -> dict[int, float]:
    r = server.call("POST", f"/projects/{pid}/predict",
                    json={"data": [{"text": dp["data"]["text"]} for dp in rows], "n_best": 3})
    assert r.status_code == 200, r.text
    return {dp["id"]: max(p["confidence"] for p in row["predictions"][0]["value"]) for dp, row in zip(rows, r.json())}


def test_label_ten_by_keyboard_then_the_model_orders_the_queue(server, work, tab_factory):
    pid = project(server, SENTIMENT)["id"]
    rows = datapoints(server, "sentiment-support-tickets")
    tab = tab_factory()
    tab.sign_in(server.url, token(server, ANNOTATOR))
    tab.page.goto(f"{server.url}/app/projects/{pid}")
    assert "no model yet" in tab.page.inner_text(".bar")
    tab.screenshot("label-classification")
    labels = [el.get_attribute("value") for el in tab.page.query_selector_all("input[type=radio]")]
    assert labels == ["negative", "neutral", "positive"]
    given = {}
    for expected in rows[:10]:  # dataset order until a model exists
        assert shown(tab) == expected["id"]
        label = expected["data"].get("sentiment") or "neutral"
        given[expected["id"]] = label
        with tab.page.expect_navigation():
            tab.page.keyboard.press(str(labels.index(label) + 1))  # one key: select and save
    assert {dp: outs["sentiment"] for dp, outs in export(server, pid).items()} == given
    first_after = shown(tab)
    assert first_after == rows[10]["id"]  # leased to this annotator before the model came

    train(server)
    summary = server.call("GET", f"/projects/{pid}/annotations/summary").json()
    assert summary["outputs"][0]["model"]["status"] == "ready"

    # a second person now gets the least confident datapoint (never the one leased above)
    left = [dp for dp in rows if dp["id"] not in given and dp["id"] != first_after]
    scores = confidences(server, pid, left)
    lowest = min(scores.values())
    other = tab_factory()
    other.sign_in(server.url, token(server, ADMIN))
    other.page.goto(f"{server.url}/app/projects/{pid}")
    picked = shown(other)
    assert scores[picked] == pytest.approx(lowest)
    assert picked != rows[11]["id"]  # the order changed: not what dataset order would give
    assert "least confident first" in other.page.inner_text(".bar")
    assert other.page.query_selector("input[type=radio]:checked") is not None  # the model's suggestion
    assert "model suggestion" in other.page.inner_text(".note")

    # skip, then undo brings back the last one labelled, with its label selected
    with other.page.expect_navigation():
        other.page.keyboard.press("s")
    assert shown(other) != picked
    with tab.page.expect_navigation():
        tab.page.keyboard.press("u")
    last = rows[9]["id"]
    assert shown(tab) == last
    assert tab.page.input_value("input[type=radio]:checked") == given[last]

    # the owner's progress page: numbers per output, per annotator, the model and a chart
    other.page.goto(f"{server.url}/app/projects/{pid}/progress")
    assert other.page.inner_text("#outputs td.annotated") == "10"
    assert other.page.inner_text(f"#people tr[data-email='{ANNOTATOR}'] td.total") == "10"
    assert "version 1" in other.page.inner_text("#outputs td.model")
    assert "fewer than 20 examples" in other.page.inner_text("#outputs td.metrics")  # too few to hold out
    more = [dp for dp in rows[12:] if dp["data"].get("sentiment")][:15]  # through the API: not the web app's
    for dp in more:
        r = server.call("POST", f"/projects/{pid}/annotations",
                        json={"datapoint_id": dp["id"], "output": "sentiment", "value": dp["data"]["sentiment"]})
        assert r.status_code == 200, r.text
    train(server)
    other.page.reload()
    annotated = int(other.page.inner_text("#outputs td.annotated"))
    assert annotated == len({*given, *(dp["id"] for dp in more)})
    assert other.page.inner_text(f"#people tr[data-email='{ANNOTATOR}'] td.total") == "10"
    assert "version 2" in other.page.inner_text("#outputs td.model")
    assert "accuracy" in other.page.inner_text("#outputs td.metrics")
    assert other.page.query_selector("svg.chart rect.fill") is not None
    other.screenshot("progress")
    assert tab.dialogs == other.dialogs == [] and tab.errors == other.errors == []


def select(tab, output: str, start: int, end: int) -> None:
    """Select UTF-16 units [start, end) of the span text, as a mouse would."""
    tab.page.evaluate(
        """([output, start, end]) => {
            const root = document.querySelector(`.span-text[data-output="${output}"]`);
            const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
            const range = document.createRange();
            let seen = 0, node;
            while ((node = walker.nextNode())) {
                const n = node.data.length;
                if (start >= seen && start <= seen + n) range.setStart(node, start - seen);
                if (end >= seen && end <= seen + n) { range.setEnd(node, end - seen); break; }
                seen += n;
            }
            const sel = window.getSelection(); sel.removeAllRanges(); sel.addRange(range);
        }""",
        [output, start, end],
    )


def utf16(text: str, index: int) -> int:
    return len(text[:index].encode("utf-16-le")) // 2


def test_spans_keep_the_api_offsets_exactly(server, work, tab_factory):
    p = project(server, ENTITIES)
    (ds,) = server.call("GET", "/datasets", params={"name": "entities-news-snippets"}).json()["items"]
    text = "\U0001F600 Ada Lovelace met IBM\r\nin Paris."  # an astral character and a CRLF before the spans
    r = server.call("PUT", f"/datasets/{ds['id']}", json={"data": [{"snippet_id": "web-1", "text": text, "source": "blog"}]})
    assert r.status_code == 200, r.text
    (dp,) = [d for d in datapoints(server, "entities-news-snippets") if d["data"]["snippet_id"] == "web-1"]
    tab = tab_factory()
    tab.sign_in(server.url, token(server, "linguist@example.com"))
    tab.page.goto(f"{server.url}/app/projects/{p['id']}?datapoint={dp['id']}")
    labels = [b.get_attribute("data-label") for b in tab.page.query_selector_all("button.span-label")]
    assert sorted(labels) == ["LOC", "ORG", "PERSON", "PRODUCT"]
    wanted = [("Ada Lovelace", "PERSON"), ("Lovelace met IBM", "ORG"), ("Paris", "LOC")]  # two overlap
    for i, (piece, label) in enumerate(wanted):
        start = text.index(piece)
        select(tab, "entities", utf16(text, start), utf16(text, start + len(piece)))
        if i % 2 == 0:
            tab.page.keyboard.press(str(labels.index(label) + 1))
        else:
            tab.page.click(f"button.span-label[data-label={label}]")
    select(tab, "entities", 3, 3)  # zero-width: adds nothing, says so
    tab.page.keyboard.press("1")
    assert "empty selection" in tab.page.inner_text(".span-status")
    assert len(tab.page.query_selector_all("ol.spans li")) == 3
    assert tab.page.query_selector("mark.hl.overlap") is not None
    tab.screenshot("label-spans")
    with tab.page.expect_navigation():
        tab.page.keyboard.press("Enter")
    expected = sorted(
        ({"start": text.index(piece), "end": text.index(piece) + len(piece), "label": label} for piece, label in wanted),
        key=lambda s: (s["start"], s["end"], s["label"]),
    )
    assert export(server, p["id"])[dp["id"]]["entities"] == expected
    assert tab.dialogs == [] and tab.errors == []


def test_multilabel_checkboxes_by_keyboard(server, work, tab_factory):
    p = project(server, TOPICS)
    tab = tab_factory()
    tab.sign_in(server.url, token(server, "agent.one@example.com"))
    tab.page.goto(f"{server.url}/app/projects/{p['id']}")
    dp = shown(tab)
    labels = [el.get_attribute("value") for el in tab.page.query_selector_all("input[type=checkbox]")]
    tab.page.keyboard.press("1")
    tab.page.keyboard.press("3")
    tab.page.keyboard.press("2")
    tab.page.keyboard.press("2")  # toggled back off
    tab.screenshot("label-multilabel")
    with tab.page.expect_navigation():
        tab.page.keyboard.press("Enter")
    assert export(server, p["id"])[dp]["topics"] == sorted([labels[0], labels[2]])
    assert shown(tab) != dp


def test_an_annotator_is_denied_other_projects_pages_and_the_api(server, work, tab_factory):
    sentiment, entities = project(server, SENTIMENT), project(server, ENTITIES)
    tok = token(server, ANNOTATOR)
    tab = tab_factory()
    tab.sign_in(server.url, tok)
    assert tab.page.inner_text("ul.projects").count("progress") == 0
    assert [a.inner_text() for a in tab.page.query_selector_all("a.project")] == [SENTIMENT]
    for path in (f"/app/projects/{entities['id']}", f"/app/projects/{entities['id']}/progress"):
        response = tab.page.goto(server.url + path)
        assert response.status == 404 and "no such project" in tab.page.inner_text("main")
    response = tab.page.goto(f"{server.url}/app/projects/{sentiment['id']}/progress")
    assert response.status == 403
    # the API answers the signed-in browser (its cookie) and the token itself with 401
    api = tab.context.request
    assert api.get(f"{server.url}/projects/{entities['id']}").status == 401
    assert api.get(f"{server.url}/projects/{sentiment['id']}", headers={"X-API-KEY": tok}).status == 401
    body = {"datapoint_id": 1, "output": "entities", "value": []}
    assert api.post(f"{server.url}/projects/{entities['id']}/annotations", data=body).status == 401
