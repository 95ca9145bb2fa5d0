#!/usr/bin/env python3
"""Refresh the copy of KaTeX that the web page ships (matcalc/web/static/katex/) from the npm registry.

    python scripts/update_katex.py            # the latest release
    python scripts/update_katex.py 0.19.1     # a given version

It runs ``npm pack katex@VERSION`` (npm's ordinary client; nothing is installed), and keeps only what the
page needs: ``katex.min.js``, ``katex.min.css`` rewritten to load only the WOFF2 fonts (every browser that
runs the page reads WOFF2), the WOFF2 fonts, KaTeX's MIT ``LICENSE``, and ``FONTS-NOTICE.txt`` with the
fonts' copyright and SIL Open Font License lines, read from the fonts' own name tables when fontTools is
available (the full OFL text is kept in ``OFL-1.1.txt``). The version is written to ``VERSION``.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

DEST = Path(__file__).resolve().parent.parent / "matcalc" / "web" / "static" / "katex"
KEEP = ("dist/katex.min.js", "LICENSE")


def _pack(version: str, work: Path) -> Path:
    spec = f"katex@{version}" if version else "katex"
    out = subprocess.run(["npm", "pack", spec, "--silent"], cwd=work, check=True, capture_output=True, text=True)
    return work / out.stdout.strip().splitlines()[-1]


def _woff2_only(css: str) -> str:
    """Drop the WOFF and TTF alternatives from every ``src:`` of the stylesheet."""
    css = re.sub(r',url\(fonts/[^)]+\.(?:woff|ttf)\) format\("(?:woff|truetype)"\)', "", css)
    return css


def _font_notice(package: Path) -> str:
    lines = ["KaTeX's fonts (fonts/*.woff2) are licensed under the SIL Open Font License, Version 1.1;",
             "the full text is in OFL-1.1.txt beside this file. Their own copyright and license lines:", ""]
    try:
        from fontTools.ttLib import TTFont
    except ImportError:
        return "\n".join(lines + ["(install fontTools to copy the lines from the fonts' name tables)"]) + "\n"
    for ttf in sorted((package / "dist" / "fonts").glob("*.ttf")):
        names = {rec.nameID: rec.toUnicode() for rec in TTFont(ttf)["name"].names}
        lines += [f"{ttf.stem}:", names.get(13, names.get(0, "")).strip(), ""]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    version = argv[1] if len(argv) > 1 else ""
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        with tarfile.open(_pack(version, work)) as tar:
            tar.extractall(work, filter="data")
        package = work / "package"
        keep_ofl = (DEST / "OFL-1.1.txt").read_text() if (DEST / "OFL-1.1.txt").exists() else None
        if DEST.exists():
            shutil.rmtree(DEST)
        (DEST / "fonts").mkdir(parents=True)
        for rel in KEEP:
            shutil.copy(package / rel, DEST / Path(rel).name)
        css = (package / "dist" / "katex.min.css").read_text()
        (DEST / "katex.min.css").write_text(_woff2_only(css))
        for font in sorted((package / "dist" / "fonts").glob("*.woff2")):
            shutil.copy(font, DEST / "fonts" / font.name)
        (DEST / "FONTS-NOTICE.txt").write_text(_font_notice(package))
        if keep_ofl is not None:
            (DEST / "OFL-1.1.txt").write_text(keep_ofl)
        import json

        got = json.loads((package / "package.json").read_text())["version"]
        (DEST / "VERSION").write_text(got + "\n")
    print(f"KaTeX {got} -> {DEST}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
