"""The HTML reader the tests share (tests/support/pages.py) reads what it says."""

from tests.support.pages import field_errors, non_field_errors, page_text, parse

PAGE = """<!doctype html>
<main id="m"><h2 id="calls-heading">Calls</h2>
  <p class="notice" role="status">A &amp; B <b>bold</b></p>
  <ul><li>one<li>two</ul>
  <input name="a" value="x"><br/>
  <script>var hidden = "<p>";</script>
  <table><tbody><tr><td>1</td><td><span>x</span> y</td></tr></tbody></table>
</main>"""


def test_elements_are_found_by_tag_and_attributes_and_keep_their_source():
    document = parse(PAGE)

    notice = document.one("p", class_="notice", role="status")
    assert notice.text == "A & B bold"
    assert notice.raw_text == "A & B bold"
    assert notice.inner_html == "A &amp; B <b>bold</b>"
    assert notice.outer_html.startswith('<p class="notice" role="status">')
    assert document.one("input").attrs == {"name": "a", "value": "x"}
    assert document.find("p", class_="missing") is None


def test_a_table_after_its_heading_reads_cell_by_cell():
    document = parse(PAGE)

    table = document.find_after(document.one(id="calls-heading"), "tbody")

    assert [[c.text for c in row.find_all("td")] for row in table.find_all("tr")] == [
        ["1", "x y"]
    ]


def test_unclosed_elements_end_with_their_parent_and_scripts_are_not_text():
    document = parse(PAGE)

    assert [item.text for item in document.find_all("li")] == ["one", "two"]
    assert document.one("main").end == len(PAGE)
    assert "hidden" not in page_text(PAGE)


def test_error_areas_are_read_by_field():
    html = (
        '<div class="field-errors" id="id_name-errors"><p class="error">Too '
        'long &lt;5&gt;</p></div><div class="form-errors" id="form-errors">'
        '<p class="error">Other</p></div>'
    )

    assert field_errors(html, "name") == ["Too long <5>"]
    assert non_field_errors(html) == ["Other"]
    assert non_field_errors("<p>none</p>") == []
