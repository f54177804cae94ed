#!/usr/bin/python3
"""Render a `tmux capture-pane -e -p` capture (ANSI SGR, 16 colours) to a PNG.

Usage: tools/screenshot.py CAPTURE.ansi OUT.png

Needs Debian's python3-pil and fonts-dejavu-core (see .ci/install-test-deps.sh). Glyphs the
monospace font lacks fall back to DejaVu Sans, centred in the cell.
"""
import re
import sys

from PIL import Image, ImageDraw, ImageFont

FONT_DIR = "/usr/share/fonts/truetype/dejavu/"
SIZE = 15
# A dark palette for the 16 ANSI colours (0-7 normal, 8-15 bright).
PALETTE = [
    (0x1d, 0x1f, 0x21), (0xcc, 0x42, 0x42), (0x8c, 0xc0, 0x5a), (0xe6, 0xb4, 0x50),
    (0x5f, 0x87, 0xd7), (0xb2, 0x7a, 0xc8), (0x4e, 0xb8, 0xc0), (0xc5, 0xc8, 0xc6),
    (0x70, 0x74, 0x78), (0xf0, 0x60, 0x60), (0xb5, 0xe0, 0x7c), (0xf5, 0xd7, 0x6e),
    (0x82, 0xaa, 0xff), (0xd7, 0x9b, 0xf0), (0x7f, 0xdb, 0xe6), (0xf2, 0xf2, 0xf2),
]
DEFAULT_FG = (0xd8, 0xda, 0xd6)
DEFAULT_BG = (0x16, 0x18, 0x1c)


def parse(text):
    """Yields rows of (char, fg, bg, bold) cells."""
    rows = []
    fg, bg, bold, reverse = None, None, False, False
    for line in text.rstrip("\n").split("\n"):
        row = []
        pos = 0
        for m in re.finditer(r"\x1b\[([0-9;]*)m|([^\x1b])", line):
            if m.group(2) is not None:
                f, b = (bg, fg) if reverse else (fg, bg)
                if reverse:
                    f = f if f is not None else DEFAULT_BG
                    b = b if b is not None else DEFAULT_FG
                row.append((m.group(2), f, b, bold))
                continue
            codes = [int(c) if c else 0 for c in m.group(1).split(";")]
            i = 0
            while i < len(codes):
                c = codes[i]
                if c == 0:
                    fg, bg, bold, reverse = None, None, False, False
                elif c == 1:
                    bold = True
                elif c == 22:
                    bold = False
                elif c == 7:
                    reverse = True
                elif c == 27:
                    reverse = False
                elif 30 <= c <= 37:
                    fg = PALETTE[c - 30]
                elif 90 <= c <= 97:
                    fg = PALETTE[c - 90 + 8]
                elif c == 39:
                    fg = None
                elif 40 <= c <= 47:
                    bg = PALETTE[c - 40]
                elif 100 <= c <= 107:
                    bg = PALETTE[c - 100 + 8]
                elif c == 49:
                    bg = None
                elif c in (38, 48) and i + 2 < len(codes) and codes[i + 1] == 5:
                    n = codes[i + 2]
                    color = PALETTE[n] if n < 16 else DEFAULT_FG
                    if c == 38:
                        fg = color
                    else:
                        bg = color
                    i += 2
                i += 1
        rows.append(row)
    return rows


def main():
    src, out = sys.argv[1], sys.argv[2]
    rows = parse(open(src, encoding="utf-8").read())
    mono = ImageFont.truetype(FONT_DIR + "DejaVuSansMono.ttf", SIZE)
    mono_bold = ImageFont.truetype(FONT_DIR + "DejaVuSansMono-Bold.ttf", SIZE)
    fallback = ImageFont.truetype(FONT_DIR + "DejaVuSans.ttf", SIZE - 1)
    cell_w = round(mono.getlength("M"))
    ascent, descent = mono.getmetrics()
    cell_h = ascent + descent + 2
    cols = max(len(r) for r in rows)
    pad = 12
    img = Image.new("RGB", (cols * cell_w + 2 * pad, len(rows) * cell_h + 2 * pad), DEFAULT_BG)
    draw = ImageDraw.Draw(img)
    missing = mono.getmask("\uffff").getbbox()

    def has_glyph(font, ch):
        return font.getmask(ch).getbbox() != missing or ch == " "

    for y, row in enumerate(rows):
        for x, (ch, fg, bg, bold) in enumerate(row):
            px, py = pad + x * cell_w, pad + y * cell_h
            if bg is not None:
                draw.rectangle([px, py, px + cell_w - 1, py + cell_h - 1], fill=bg)
            if ch == " ":
                continue
            color = fg if fg is not None else DEFAULT_FG
            # Box drawing must join up: draw those lines by hand, edge to edge.
            if ch in "─│┌┐└┘├┤┬┴┼":
                cx, cy = px + cell_w // 2, py + cell_h // 2
                left = ch in "─┐┘┤┬┴┼"
                right = ch in "─┌└├┬┴┼"
                up = ch in "│└┘├┤┴┼"
                down = ch in "│┌┐├┤┬┼"
                if left:
                    draw.line([px, cy, cx, cy], fill=color)
                if right:
                    draw.line([cx, cy, px + cell_w, cy], fill=color)
                if up:
                    draw.line([cx, py, cx, cy], fill=color)
                if down:
                    draw.line([cx, cy, cx, py + cell_h], fill=color)
                continue
            font = mono_bold if bold else mono
            if has_glyph(font, ch):
                draw.text((px, py + 1), ch, font=font, fill=color)
            else:
                w = fallback.getlength(ch)
                draw.text((px + (cell_w - w) / 2, py + 1), ch, font=fallback, fill=color)
    img.save(out)
    print(f"wrote {out}: {img.width}x{img.height}")


if __name__ == "__main__":
    main()
