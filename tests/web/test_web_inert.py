"""Payloads in a guideline, a label and a datapoint render inert in real Chromium: no
dialog, no script of theirs runs, and the DOM holds none of their elements or handlers."""

from __future__ import annotations

from web_helpers import token

GUIDELINES = (
    "# Rules\n\n<script>alert('g1')</script>\n\n<img src=x onerror=\"alert('g2')\">\n\n"
    "[click me](javascript:alert('g3'))\n\n<a href=\"javascript:alert('g4')\">x</a> <svg onload=alert('g5')></svg>\n"
)
TEXT = "<script>alert('d1')</script><img src=x onerror=alert('d2')><iframe src=javascript:alert('d3')></iframe> end"
LABEL = "<img src=x onerror=alert('l1')>"


def test_payloads_in_guidelines_labels_and_datapoints_stay_text(browser, tab_factory, server):
    # ``browser`` first: without Chromium the test skips before a server starts
    r = server.call("POST", "/datasets", json={
        "name": "xss", "fields": [{"name": "text", "data_type": "text"}, {"name": "note", "data_type": "text"}],
        "data": [{"text": TEXT, "note": "<b onmouseover=alert('n1')>bold</b>"}],
    })
    assert r.status_code == 201, r.text
    fields = {f["name"]: f["id"] for f in r.json()["fields"]}
    r = server.call("POST", "/projects", json={
        "name": "xss project", "guidelines": GUIDELINES,
        "inputs": [{"name": "text", "data_type": "text", "data_sources": [{"field_id": fields["text"]}]},
                   {"name": "note", "data_type": "text", "display_only": True, "data_sources": [{"field_id": fields["note"]}]}],
        "outputs": [
            {"name": "kind", "task_type": "classification", "labels": [{"name": LABEL, "description": "\"><script>alert('t1')</script>"}, {"name": "fine"}]},
            {"name": "spans", "task_type": "sequence_tagging", "input": "text", "labels": [{"name": LABEL}]},
        ],
        "users": [{"email": "xss@example.com", "role": "owner"}],
    })
    assert r.status_code == 201, r.text
    pid = r.json()["id"]
    tab = tab_factory()
    tab.sign_in(server.url, token(server, "xss@example.com"))
    response = tab.page.goto(f"{server.url}/app/projects/{pid}")
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "unsafe-eval" not in csp
    page = tab.page
    page.wait_for_selector("mark, .span-text")  # the page's script has run
    found = page.evaluate("""() => ({
        scripts: Array.from(document.scripts).map(s => s.src ? new URL(s.src).pathname : s.type),
        elements: document.querySelectorAll("img, iframe, object, embed, svg, b").length,
        handlers: Array.from(document.querySelectorAll("*")).flatMap(el =>
            Array.from(el.attributes).filter(a => a.name.startsWith("on")).map(a => el.tagName + " " + a.name)),
        jsLinks: Array.from(document.querySelectorAll("a[href]")).filter(a => /^\\s*javascript:/i.test(a.getAttribute("href"))).length,
        spanText: document.querySelector(".span-text").textContent,
        note: document.querySelector('[data-input="note"]').textContent,
        guidelines: document.querySelector("#guidelines").textContent,
    })""")
    assert found["scripts"] == ["/app/static/app.js", "application/json"]
    assert found["elements"] == 0 and found["handlers"] == [] and found["jsLinks"] == 0
    assert found["spanText"] == TEXT  # shown as text, exactly
    assert found["note"] == "<b onmouseover=alert('n1')>bold</b>"
    assert "<script>alert('g1')</script>" in found["guidelines"]
    assert LABEL in page.inner_text("fieldset[data-output=kind]")
    page.keyboard.press("2")  # interact a little: pick a label, select text and tag it
    page.mouse.move(10, 10)
    assert tab.dialogs == [] and tab.errors == []
