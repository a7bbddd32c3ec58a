"""Open results/leaderboard.html in headless Chromium, use it as a reader would, and take a screenshot.

    python scripts/check_leaderboard_page.py [--page results/leaderboard.html] [--screenshot docs/images/leaderboard.png]

Needs Playwright's Python package and a Chromium (`pip install playwright`, then `apt install
chromium` or `playwright install chromium`; --chromium names the executable). Checks, each printed:
the page runs without script errors; the summary states the floor and what "within noise" means;
clicking a column head sorts its table (numbers as numbers, both directions); clicking a thumbnail
opens it full size and Escape closes it; every unranked row says why. Exit status 1 if one fails.
"""
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common.errors import ArgumentParser, UserError, exit_on_user_error  # noqa: E402

COLUMN_OF = "Array.from(document.querySelectorAll('table.sortable')[0].tHead.rows[0].cells).map(c => c.textContent)"


def column(page, name: str) -> list[str]:
    return page.evaluate(f"""() => {{
        const table = document.querySelectorAll('table.sortable')[0];
        const i = {COLUMN_OF}.indexOf({name!r});
        return Array.from(table.tBodies[0].rows).map(r => r.cells[i].textContent.trim());
    }}""")


def checks(page) -> list[tuple[str, bool]]:
    out = []
    summary = page.inner_text("#summary")
    out.append(("summary states the floor and 'within noise'", "floor is FID" in summary and "within noise" in summary))
    fids = [float(v) for v in column(page, "fid")]
    out.append(("ranked rows start sorted by FID", fids == sorted(fids)))
    head = page.locator("table.sortable").first.locator("th", has_text="fid_std")
    head.click()
    up = [float(v) for v in column(page, "fid_std")]
    head.click()
    down = [float(v) for v in column(page, "fid_std")]
    out.append(("clicking a head sorts by it, again reverses", up == sorted(up) and down == sorted(up, reverse=True)))
    if page.locator("img.thumb").count() == 0:
        return out + [("a thumbnail to open (the page has none: no grids were found)", False)]
    page.locator("img.thumb").first.click()
    full = page.locator("#full img")
    visible = page.is_visible("#full")
    width = full.evaluate("img => img.getBoundingClientRect().width")
    out.append((f"a thumbnail opens full size ({width:.0f} px wide against 120)", visible and width > 240))
    page.keyboard.press("Escape")
    out.append(("Escape closes it", not page.is_visible("#full")))
    tables = page.locator("table.sortable")
    if tables.count() > 1 and "not_ranked_reason" in tables.nth(1).inner_text():
        reasons = tables.nth(1).evaluate("""t => { const i = Array.from(t.tHead.rows[0].cells)
            .map(c => c.textContent).indexOf('not_ranked_reason');
            return Array.from(t.tBodies[0].rows).map(r => r.cells[i].textContent.trim()); }""")
        out.append((f"each of {len(reasons)} unranked rows says why", all(reasons)))
    return out


@exit_on_user_error
def main(argv=None) -> int:
    p = ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--page", default="results/leaderboard.html")
    p.add_argument("--screenshot", default="docs/images/leaderboard.png")
    p.add_argument("--chromium", default=shutil.which("chromium") or shutil.which("chromium-browser"),
                   help="Chromium executable (default: chromium on PATH, else Playwright's own)")
    p.add_argument("--width", type=int, default=1500)
    args = p.parse_args(argv)
    page_path = Path(args.page).resolve()
    if not page_path.is_file():
        raise UserError(f"{page_path} not found; run python leaderboard.py first")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        raise UserError("this check needs Playwright: pip install playwright (and a Chromium)") from None
    errors = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=args.chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": args.width, "height": 900})
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(page_path.as_uri())
        results = checks(page)
        results.insert(0, ("no script errors", not errors))
        page.reload()
        page.screenshot(path=args.screenshot, full_page=True)
        browser.close()
    for what, ok in results:
        print(f"{'ok  ' if ok else 'FAIL'} {what}")
    print(f"screenshot -> {args.screenshot}" + (f"; script errors: {errors}" if errors else ""))
    return 0 if all(ok for _, ok in results) else 1


if __name__ == "__main__":
    sys.exit(main())
