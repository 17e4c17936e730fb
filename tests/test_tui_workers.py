"""Workers: every one may fail without closing the app; the App says what failed, once, as a notification."""

from __future__ import annotations

import ast
from pathlib import Path

from tui.app import create_app
from tui_helpers import sync, wait_for

SCREENS = Path(__file__).resolve().parent.parent / "tui" / "screens"


def test_every_worker_has_a_description_and_never_exits_the_app() -> None:
    found = 0
    for path in sorted(SCREENS.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "work":
                found += 1
                options = {keyword.arg: keyword.value for keyword in node.keywords}
                assert isinstance(options.get("exit_on_error"), ast.Constant), f"{path.name}:{node.lineno}"
                assert options["exit_on_error"].value is False, f"{path.name}:{node.lineno}"
                assert isinstance(options.get("description"), ast.Constant), f"{path.name}:{node.lineno}"
    assert found >= 10


@sync
async def test_an_unreadable_datasets_folder_is_a_notification_not_a_crash(tmp_path: Path) -> None:
    not_a_folder = tmp_path / "datasets"
    not_a_folder.write_text("a file where the datasets folder should be")
    app = create_app(not_a_folder, tmp_path / "runs")
    async with app.run_test(size=(80, 24)) as pilot:
        app.open_datasets()
        await wait_for(pilot, lambda: any("listing the datasets failed" in str(n.message)
                                          for n in app._notifications))
        assert app.is_running and type(app.screen).__name__ == "DatasetsScreen"
