"""The page of ``matcalc serve`` in a real browser: Debian's headless Chromium driven by Playwright (which is
pointed at /usr/bin/chromium and never downloads a browser). Every answer read off the page is compared
with matcalc's own, and every request the page makes must stay on this machine.

Outside CI these tests skip when Playwright or Chromium is missing; under CI (CI=true) they fail instead.
"""

from __future__ import annotations

import os
import shutil
from urllib.parse import quote

import numpy as np
import pytest
from finite_differences import first, random_values
from web_server import Server, need

import matcalc

CHROMIUM = os.environ.get("MATCALC_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run"]

need("starlette")
need("uvicorn")
sync_api = need("playwright.sync_api")
if not os.path.exists(CHROMIUM):
    if os.environ.get("CI") == "true":
        raise RuntimeError(f"CI needs Chromium at {CHROMIUM} (apt-get install chromium)")
    pytest.skip("no Chromium on this machine", allow_module_level=True)


@pytest.fixture(scope="module")
def server():
    s = Server()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield b
        b.close()


@pytest.fixture
def page(browser, server):
    """A fresh page with clipboard access; afterwards, every request it made is checked to be local."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
    pg = context.new_page()
    requests: list[str] = []
    errors: list[str] = []
    pg.on("request", lambda r: requests.append(r.url))
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.requests = requests
    yield pg
    context.close()
    off = [u for u in requests if not (u.startswith(server.url + "/") or u.startswith("data:"))]
    assert off == [], f"the page made requests off the machine: {off}"
    assert errors == [], f"script errors on the page: {errors}"


def open_page(page, server, query: str = ""):
    page.goto(f"{server.url}/{query}")
    page.wait_for_selector("#result .katex")
    return page


def result_text(page) -> str:
    return page.get_attribute("#result", "data-text")


def formula(d) -> str:
    """The text the page shows and copies: the whole formula (its where line of assumptions apart)."""
    return d.text(named=False)


def wait_for_result(page, text: str) -> None:
    page.wait_for_function("t => document.querySelector('#result').dataset.text === t", arg=text, timeout=20000)


def clipboard(page) -> str:
    return page.evaluate("navigator.clipboard.readText()")


def test_type_an_expression_and_read_the_rendered_result(page, server):
    open_page(page, server)
    page.click("#expr")
    page.keyboard.press("Control+A")
    page.keyboard.type("max(0, w·x + b)")
    page.keyboard.press("Enter")
    # the variable chosen before (x) still occurs, so it stays chosen
    wait_for_result(page, formula(matcalc.derive("max(0, w·x + b)", "x")))
    page.select_option("#wrt", "w")
    want = matcalc.derive("max(0, w·x + b)", "w")
    wait_for_result(page, formula(want))
    # KaTeX rendered it, and its MathML annotation is the LaTeX of the whole equation
    annotation = page.text_content("#result .katex-mathml annotation")
    assert want.latex() in annotation and "\\partial" in annotation
    assert page.locator("#result .katex-error").count() == 0
    assert page.input_value("#wrt") == "w"
    assert page.locator("#steps li").count() >= 3
    assert "max(0%2C+w" in page.url or "max%280" in page.url


def test_change_a_variable_kind_and_switch_the_layout(page, server):
    open_page(page, server, "?expr=" + quote("x' A x"))
    wait_for_result(page, "x' (A + A')")
    page.select_option('select[aria-label="kind of A"]', "symmetric")
    want = matcalc.derive("x' A x", "x", A="symmetric(n)")
    wait_for_result(page, formula(want))
    assert page.input_value('select[aria-label="kind of A"]') == "symmetric"
    assert "let=A%3Asymmetric%28n%29" in page.url
    page.select_option("#layout", "denominator")
    want = matcalc.derive("x' A x", "x", layout="denominator", A="symmetric(n)")
    wait_for_result(page, formula(want))
    page.select_option("#order", "2")
    wait_for_result(page, formula(matcalc.derive("x' A x", "x", order=2, A="symmetric(n)")))


def test_dimension_names_are_editable(page, server):
    open_page(page, server, "?expr=" + quote("A x"))
    page.fill('input[aria-label="dimensions of A"]', "m, n")
    page.press('input[aria-label="dimensions of A"]', "Enter")
    page.wait_for_function("() => document.querySelector('#result-kind').textContent.startsWith('matrix(m, n)')")


def test_run_the_check_with_progress(page, server):
    open_page(page, server, "?expr=" + quote("x' A x"))
    page.fill("#time-limit", "20")
    page.click("#check")
    assert page.is_visible("#check-progress") or page.text_content("#check-result").startswith("OK")
    page.wait_for_function("() => document.querySelector('#check-result').dataset.verdict", timeout=40000)
    assert page.text_content("#check-result").startswith("OK")
    assert page.get_attribute("#check-result", "data-verdict") == "true"
    assert page.is_hidden("#check-progress")


def test_copy_the_code_and_it_computes_the_derivative(page, server):
    open_page(page, server, "?expr=" + quote("||X w - y||^2") + "&wrt=w&layout=denominator")
    page.wait_for_function("() => document.querySelector('#code').textContent.includes('def derivative_w')")
    page.click("#copy-code")
    page.wait_for_function("() => document.querySelector('#copied').textContent.includes('numpy')")
    source = clipboard(page)
    namespace: dict = {}
    exec(compile(source, "<copied>", "exec"), namespace)  # the code matcalc generated, copied off the page
    node = matcalc.parse("||X w - y||^2")
    d = matcalc.derive(node, "w", layout="denominator")
    values = random_values(node, seed=3)
    got = namespace["derivative_w"](**values)
    np.testing.assert_allclose(got, first(node, d.variable, values, "denominator"), rtol=1e-5, atol=1e-6)
    page.click("#code-tabs [data-target=torch]")
    assert "import torch" in page.text_content("#code") and "code=torch" in page.url
    page.click("#copy-latex")
    page.wait_for_function("() => document.querySelector('#copied').textContent.includes('LaTeX')")
    assert clipboard(page) == d.latex()
    page.click("#copy-text")
    page.wait_for_function("() => document.querySelector('#copied').textContent.includes('text')")
    assert clipboard(page) == formula(d)


def test_load_a_shared_url(page, server, browser):
    open_page(page, server, "?expr=" + quote("x' A x"))
    page.select_option('select[aria-label="kind of A"]', "symmetric")
    page.select_option("#layout", "denominator")
    want = formula(matcalc.derive("x' A x", "x", layout="denominator", A="symmetric(n)"))
    wait_for_result(page, want)
    page.click("#share")
    page.wait_for_function("() => document.querySelector('#copied').textContent.includes('link')")
    link = clipboard(page)
    assert link.startswith(server.url)
    other = page.context.new_page()
    other.goto(link)
    other.wait_for_selector("#result .katex")
    wait_for_result(other, want)
    assert other.input_value("#expr") == "x' A x" and other.input_value("#layout") == "denominator"
    assert other.input_value('select[aria-label="kind of A"]') == "symmetric"


def test_trigger_an_error_with_a_caret(page, server):
    open_page(page, server)
    page.fill("#expr", "x' A + x")
    page.press("#expr", "Enter")
    page.wait_for_selector("#error:not([hidden])")
    with pytest.raises(matcalc.ShapeError) as info:
        matcalc.parse("x' A + x")
    assert info.value.message in page.text_content("#error-message")
    assert page.text_content("#error-caret") == info.value.caret()
    assert page.get_attribute("#expr", "aria-invalid") == "true"
    assert "stale" in page.get_attribute("#output", "class")  # the old result is dimmed, not passed off as new
    page.fill("#expr", "x' x")
    page.press("#expr", "Enter")
    page.wait_for_selector("#error", state="hidden")
    wait_for_result(page, formula(matcalc.derive("x' x", "x")))


def test_keyboard_only_operators_and_check(page, server):
    open_page(page, server, "?expr=" + quote("w"))
    page.focus("#expr")
    page.keyboard.press("End")
    page.keyboard.press("Tab")  # to the first operator button, ⊙
    assert page.evaluate("document.activeElement.textContent") == "⊙"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "expr"  # focus goes back to the field
    page.keyboard.type("x")
    page.keyboard.press("Enter")
    assert page.input_value("#expr") == "w ⊙ x"
    wait_for_result(page, formula(matcalc.derive("w ⊙ x", "w")))
    page.keyboard.press("Control+Enter")
    page.wait_for_function("() => document.querySelector('#check-result').dataset.verdict", timeout=40000)
    assert page.get_attribute("#check-result", "data-verdict") == "true"


def test_examples_one_click_away_and_tensor_forms(page, server):
    open_page(page, server)
    page.click("#examples button:text-is('neuron')")
    wait_for_result(page, formula(matcalc.derive("max(0, w·x + b)", "w")))
    page.click("#examples button:text-is('dense layer, weights')")
    d = matcalc.derive("W x + b", "W")
    page.wait_for_selector("#tensor:not([hidden])")
    assert page.text_content("#tensor-index") == d.index
    assert page.locator("#tensor-kron .katex").count() == 1
    page.click("#examples button:text-is('logistic regression')")
    wait_for_result(page, formula(matcalc.derive(
        "-sum(y .* log(sigmoid(X w)) + (1 - y) .* log(1 - sigmoid(X w)))", "w", layout="denominator")))
    assert page.is_hidden("#tensor")


def test_keyboard_only_variable_table(page, server):
    open_page(page, server, "?expr=" + quote("x' A x"))
    wait_for_result(page, "x' (A + A')")
    page.focus('select[aria-label="kind of A"]')
    page.keyboard.press("ArrowDown")  # matrix -> symmetric, with the keyboard alone
    wait_for_result(page, formula(matcalc.derive("x' A x", "x", A="symmetric(n)")))
    assert page.evaluate("document.activeElement.dataset.var") == "A"  # focus survives the re-render
    page.keyboard.press("Tab")  # the dimensions
    page.keyboard.press("Tab")  # "inferred": forget the declaration
    assert page.evaluate("document.activeElement.dataset.field") == "reset"
    page.keyboard.press("Enter")
    wait_for_result(page, "x' (A + A')")
    assert page.evaluate("document.activeElement.dataset.field") == "kind"
    assert "let=" not in page.url


def test_assumptions_and_warnings_are_shown(page, server):
    """Issue 17 on the page: the where line of assumptions, and a note for a reading users rarely mean."""
    open_page(page, server, "?expr=" + quote("tanh(W x + b)") + "&wrt=x")
    page.wait_for_function("() => document.querySelector('#notes').textContent.includes('letter convention')")
    text = page.text_content("#notes")
    assert "where" in text and "W: matrix" in text
    assert "note: b is taken to be a scalar" in text
