"""The ``/classify`` form, read strictly before BentoML sees it.

BentoML parses a multipart body leniently: a truncated body or a second ``image`` part is answered as if nothing
were wrong, an ``image`` sent as a text field is fetched as a URL or opened as a local path, an odd file name ends
in a 500, and its own refusals are logged with a traceback. ``parse_form`` accepts exactly one form: one file part
``image`` and at most one of each text field, every text plain (no control or invisible characters), and refuses
anything else with a ``Refused(status, message)``. ``ClassifyForm.encode`` writes the accepted form back as a
fresh body with a safe file name, so the parser BentoML runs only ever sees what was checked here.

A text field is read the way BentoML reads it: its client sends every value JSON-encoded (``"gray"``, ``null``),
curl sends it bare (``gray``). JSON that decodes to a string is that string (so an escaped ``"\u0000"`` is checked
as the NUL it stands for), ``null`` is an absent field, a bare number is its text; the fresh body carries each value
as a JSON string, so BentoML gets exactly the text that was checked.
"""

from __future__ import annotations

import json
import re
import secrets
import unicodedata
from dataclasses import dataclass, field

FILE_FIELD = "image"
KINDS = ("gray", "color")
TEXT_MAX = 64  # characters of machine_id, part_no, upstream_code
TEXT_FIELDS = ("kind", "machine_id", "part_no", "upstream_code")
FILENAME_MAX_BYTES = 255  # what a file system takes as one name
# RFC 2046: a boundary is 1..70 of these characters, not ending in a space.
_BCHARS = re.compile(r"[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]")
_TOKEN = r"[A-Za-z0-9!#$%&'*+.^_`|~-]+"
_PARAM = re.compile(rf'\s*;\s*({_TOKEN})\s*=\s*("(?:[^"\\\r\n]|\\.)*"|[^\s;"]+)')
_HEADER = re.compile(rf"({_TOKEN}):[ \t]*(.*?)[ \t]*")


class Refused(ValueError):
    """A request that is not the form /classify takes: ``status`` (4xx) and a message for the caller."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def text_problem(name: str, value: str) -> str | None:
    """Why ``value`` is no plain text for field ``name`` (None when it is).

    Refused: C0 and C1 controls (NUL, TAB, ESC, U+0085 ...), format characters (zero-width, bidirectional
    overrides), surrogates, private-use and unassigned code points, line and paragraph separators: what a
    catalog may refuse (PostgreSQL: NUL), what a log or a terminal misreads, what makes two ids look equal.
    """
    for position, char in enumerate(value):
        category = unicodedata.category(char)
        if category[0] == "C" or category in ("Zl", "Zp"):
            kind = "control" if category == "Cc" else "invisible or non-text"
            return f"{name} holds a {kind} character (U+{ord(char):04X}) at position {position}: send plain text"
    return None


def _params(text: str, what: str) -> dict[str, str]:
    """``; a=1; b="x y"`` -> {a: 1, b: x y}; a malformed or repeated parameter is refused."""
    out, position, text = {}, 0, text.rstrip()
    while position < len(text):
        match = _PARAM.match(text, position)
        if match is None:
            raise Refused(400, f"malformed {what} parameters: {text[position : position + 60]!r}")
        name, value = match[1].lower(), match[2]
        if value.startswith('"'):  # kept as is inside: browsers send a backslash as one (WHATWG), never an escape
            value = value[1:-1]
        if name in out:
            raise Refused(400, f"{what} gives the parameter {name!r} twice")
        out[name] = value
        position = match.end()
    return out


def boundary_of(content_type: str) -> str:
    """The boundary of a ``multipart/form-data`` Content-Type; anything else is refused (415 or 400)."""
    media_type, _, rest = content_type.partition(";")
    if media_type.strip().lower() != "multipart/form-data":
        raise Refused(
            415, f"send multipart/form-data with the image in the field '{FILE_FIELD}', not {media_type.strip()[:60]!r}"
        )
    boundary = _params(";" + rest if rest else "", "Content-Type").get("boundary")
    if not boundary:
        raise Refused(400, "multipart/form-data without a boundary")
    if not _BCHARS.fullmatch(boundary):
        raise Refused(400, "the multipart boundary must be 1 to 70 letters, digits or '()+_,-./:=? characters")
    return boundary


@dataclass
class _Part:
    name: str
    filename: str | None
    content_type: str | None
    content: bytes


def _part(number: int, raw: bytes) -> _Part:
    head, sep, content = raw.partition(b"\r\n\r\n")
    if not sep:
        raise Refused(400, f"multipart part {number} has no end of headers (a truncated body?)")
    headers: dict[str, str] = {}
    for line in head.split(b"\r\n"):
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            raise Refused(400, f"multipart part {number}: a header that is not UTF-8") from None
        match = _HEADER.fullmatch(text)
        if match is None or any(unicodedata.category(c) == "Cc" and c != "\t" for c in text):
            raise Refused(400, f"multipart part {number}: malformed header line {text[:60]!r}")
        name = match[1].lower()
        if name in headers:
            raise Refused(400, f"multipart part {number} gives the header {match[1]} twice")
        headers[name] = match[2]
    disposition = headers.get("content-disposition")
    if disposition is None:
        raise Refused(400, f"multipart part {number} has no Content-Disposition")
    kind, _, rest = disposition.partition(";")
    if kind.strip().lower() != "form-data":
        raise Refused(400, f"multipart part {number}: Content-Disposition must be form-data, not {kind.strip()[:40]!r}")
    params = _params(";" + rest if rest else "", "Content-Disposition")
    if "filename*" in params:
        raise Refused(400, f"multipart part {number}: use filename=, not filename* (RFC 7578)")
    encoding = headers.get("content-transfer-encoding", "binary").lower()
    if encoding not in ("binary", "8bit", "7bit"):
        raise Refused(
            400,
            f"multipart part {number}: Content-Transfer-Encoding {encoding!r} is not accepted; send the bytes "
            f"as they are",
        )
    if "name" not in params:
        raise Refused(400, f"multipart part {number} has no field name")
    return _Part(params["name"], params.get("filename"), headers.get("content-type"), content)


def _check_filename(filename: str) -> None:
    if not filename:
        raise Refused(400, f"the file part '{FILE_FIELD}' has an empty file name (no file chosen?)")
    if len(filename.encode("utf-8")) > FILENAME_MAX_BYTES:
        raise Refused(400, f"the image's file name is longer than {FILENAME_MAX_BYTES} bytes")
    problem = text_problem("the image's file name", filename)
    if problem:
        raise Refused(400, problem)
    if "/" in filename or "\\" in filename or filename in (".", ".."):
        raise Refused(400, f"the image's file name {filename[:60]!r} is a path: send the file's own name only")


@dataclass(frozen=True)
class ClassifyForm:
    """An accepted /classify form: the image's bytes and the text fields that were sent."""

    image: bytes
    fields: dict[str, str] = field(default_factory=dict)

    def encode(self) -> tuple[str, bytes]:
        """(Content-Type, body) of the same form, written afresh: one file part with a fixed, safe name."""
        boundary = "aoi-" + secrets.token_hex(16)
        while boundary.encode() in self.image:  # practically never
            boundary = "aoi-" + secrets.token_hex(16)
        delimiter = b"--" + boundary.encode()
        chunks = [
            delimiter,
            b'\r\nContent-Disposition: form-data; name="image"; filename="image"\r\n'
            b"Content-Type: application/octet-stream\r\n\r\n",
            self.image,
            b"\r\n",
        ]
        for name, value in self.fields.items():
            chunks += [
                delimiter,
                f'\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode(),
                json.dumps(value).encode(),
                b"\r\n",
            ]
        chunks += [delimiter, b"--\r\n"]
        return f"multipart/form-data; boundary={boundary}", b"".join(chunks)


def parse_form(content_type: str, body: bytes) -> ClassifyForm:
    """The /classify form in ``body``, or ``Refused`` with what is wrong with it."""
    delimiter = b"--" + boundary_of(content_type).encode()
    if not body.startswith(delimiter + b"\r\n"):
        raise Refused(400, "the body does not start with the multipart boundary of its Content-Type")
    sections = body[len(delimiter) :].split(b"\r\n" + delimiter)
    closing = sections.pop()
    if not closing.startswith(b"--") or closing[2:].strip(b"\r\n \t"):
        raise Refused(400, "the multipart body does not end with its closing boundary (truncated?)")
    image, fields, seen = None, {}, set()
    for number, section in enumerate(sections, start=1):
        if not section.startswith(b"\r\n"):
            raise Refused(400, f"multipart part {number}: the boundary line is not followed by a line break")
        part = _part(number, section[2:])
        name = part.name
        if name == FILE_FIELD:
            if part.filename is None:
                raise Refused(
                    400,
                    f"'{FILE_FIELD}' came as a text field: send the image as a file part "
                    "(Content-Disposition with a filename), not a URL, a path or text",
                )
            if image is not None:
                raise Refused(400, f"more than one '{FILE_FIELD}' part: send one image per request")
            _check_filename(part.filename)
            image = part.content
            continue
        if name not in TEXT_FIELDS:
            shown = name[:40] if not text_problem("name", name) else repr(name[:40])
            raise Refused(400, f"unknown field {shown!r}: /classify takes {FILE_FIELD}, {', '.join(TEXT_FIELDS)}")
        if name in seen:
            raise Refused(400, f"the field {name!r} is given twice")
        if part.filename is not None:
            raise Refused(400, f"{name!r} is a text field, not a file")
        media = (part.content_type or "text/plain").partition(";")[0].strip().lower()
        if media != "text/plain":
            raise Refused(400, f"{name!r} is a text field: send it as text/plain (UTF-8), not {media[:40]!r}")
        try:
            value = part.content.decode("utf-8")
        except UnicodeDecodeError:
            raise Refused(400, f"{name!r} is not UTF-8 text") from None
        seen.add(name)
        try:
            decoded = json.loads(value)
        except ValueError:
            decoded = value
        if decoded is None:
            continue  # BentoML's client sends an unset optional field as null
        if isinstance(decoded, str):
            value = decoded
        elif not isinstance(decoded, (int, float)):  # bool is an int: its text, like a number's
            raise Refused(400, f"{name!r} must be text, not a JSON {type(decoded).__name__}")
        problem = text_problem(name, value)
        if problem:
            raise Refused(400, problem)
        if name == "kind" and value not in KINDS:
            raise Refused(400, f"kind must be one of {', '.join(KINDS)}, not {value[:40]!r}")
        if len(value) > TEXT_MAX:
            raise Refused(400, f"{name!r} is longer than {TEXT_MAX} characters")
        fields[name] = value
    if image is None:
        raise Refused(400, f"no image: send the image file in the multipart field '{FILE_FIELD}'")
    if not image:
        raise Refused(400, "the image file is empty (0 bytes)")
    return ClassifyForm(image, fields)
