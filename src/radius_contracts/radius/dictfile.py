"""Read FreeRADIUS-format dictionary files into a model that pyrad's parser accepts.

pyrad 2.6 reads the classic dictionary format but ignores keywords it does not know (so a typo
such as ``ATRIBUTE`` in our own files would vanish without a word), reports an error as a bare
file name and line, and lets a later definition replace an earlier one. FreeRADIUS's own files
use constructs pyrad cannot encode at all (``BEGIN-TLV``, ``array``, RFC 6929 extended
attributes, vendors whose VSA header is not one octet type + one octet length).

So we parse the files ourselves into a :class:`DictModel`, in one of two modes:

* strict (our ``dictionaries/``): anything pyrad could not encode, or that is simply wrong,
  raises :class:`~radius_contracts.errors.DictionaryError` naming the file and line;
* lenient (extra directories such as ``/usr/share/freeradius``): constructs pyrad cannot
  handle are skipped and each kind is logged once at DEBUG; malformed lines are skipped
  with a WARNING naming the file and line, so a broken vendor file cannot stop a reload.

:func:`merge` lays the models over each other (ours win) and :func:`render` writes the result
back out in the small subset of the format pyrad reads, with a line map for its errors.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

from radius_contracts.errors import DictionaryError

logger = logging.getLogger(__name__)

# The data types pyrad 2.6 encodes and decodes (pyrad.dictionary.DATATYPES).
PYRAD_TYPES = frozenset(
    {
        "string",
        "octets",
        "ipaddr",
        "ipv6addr",
        "ipv6prefix",
        "ifid",
        "ether",
        "abinary",
        "integer",
        "integer64",
        "signed",
        "short",
        "byte",
        "date",
        "tlv",
    }
)

# Inclusive value ranges of the types that may carry named VALUEs.
INTEGER_RANGES: dict[str, tuple[int, int]] = {
    "byte": (0, 2**8 - 1),
    "short": (0, 2**16 - 1),
    "integer": (0, 2**32 - 1),
    "integer64": (0, 2**64 - 1),
    "signed": (-(2**31), 2**31 - 1),
}

# FreeRADIUS 4 spells some fixed-width types differently; the octets on the wire are the same.
_TYPE_ALIASES = {
    "uint8": "byte",
    "uint16": "short",
    "uint32": "integer",
    "uint64": "integer64",
    "int32": "signed",
    "ipv4addr": "ipaddr",
}

# Flags that only matter to FreeRADIUS's own processing and change nothing on the wire.
_HARMLESS_FLAGS = frozenset({"concat", "secret"})

# pyrad uses "Name:tag" for tagged attributes, so ':' (and of course spaces) cannot be allowed.
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+/-]*")
_NUMBER_RE = re.compile(r"(0x[0-9A-Fa-f]+|[0-9]+)")

# Codes of attributes that travel in a packet: one octet (RFC 2865 §5, and §5.26 for VSAs).
_MAX_WIRE_CODE = 255


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a definition was read."""

    file: Path
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True, slots=True)
class VendorDef:
    name: str
    id: int
    origin: Origin


@dataclass(frozen=True, slots=True)
class AttributeDef:
    name: str
    vendor: str  # the vendor's name as its VENDOR line spells it, "" for standard attributes
    codes: tuple[int, ...]  # (code,) or (tlv code, code) for a TLV sub-attribute
    type: str
    has_tag: bool
    encrypt: int
    origin: Origin

    def same_definition(self, other: AttributeDef) -> bool:
        return (self.vendor.casefold(), self.codes, self.type, self.has_tag, self.encrypt) == (
            other.vendor.casefold(),
            other.codes,
            other.type,
            other.has_tag,
            other.encrypt,
        )


@dataclass(frozen=True, slots=True)
class ValueDef:
    attribute: str
    name: str
    number: int
    origin: Origin


@dataclass(slots=True)
class DictModel:
    """Vendors, attributes and named values; every key is the case-folded name."""

    vendors: dict[str, VendorDef] = field(default_factory=dict)
    attributes: dict[str, AttributeDef] = field(default_factory=dict)
    values: dict[str, dict[str, ValueDef]] = field(default_factory=dict)
    skipped: int = 0  # definitions left out (lenient mode only)


@dataclass(slots=True)
class _FileState:
    vendor: str = ""  # open BEGIN-VENDOR block, canonical vendor name
    skip_block: str = ""  # why the open vendor block's attributes are skipped, if they are
    nesting: int = 0  # depth of BEGIN-TLV / BEGIN blocks (lenient only; contents skipped)
    foreign_protocol: bool = False  # inside BEGIN-PROTOCOL for something other than RADIUS
    block_origin: Origin | None = None


class _Parser:
    def __init__(self, *, strict: bool) -> None:
        self.strict = strict
        self.model = DictModel()
        self._pending_values: list[tuple[list[str], Origin]] = []
        self._skipped_names: set[str] = set()
        self._unsupported_vendors: set[str] = set()
        self._tlvs: set[tuple[str, int]] = set()  # (vendor key, code) of TLV attributes
        self._logged: set[str] = set()

    # -- reporting -----------------------------------------------------------------------

    def _unsupported(self, origin: Origin, kind: str, detail: str, name: str = "") -> None:
        """A construct pyrad cannot use: an error in our files, skipped (logged once) else."""
        if self.strict:
            raise DictionaryError(detail, file=str(origin.file), line=origin.line)
        if name:
            self._skipped_names.add(name.casefold())
        self.model.skipped += 1
        if kind not in self._logged:
            self._logged.add(kind)
            logger.debug("%s: skipping %s (logged once per kind)", origin, detail)

    def _malformed(self, origin: Origin, detail: str, name: str = "") -> None:
        """A line that is simply wrong: an error in our files, a warning in others."""
        if self.strict:
            raise DictionaryError(detail, file=str(origin.file), line=origin.line)
        if name:
            self._skipped_names.add(name.casefold())
        self.model.skipped += 1
        logger.warning("%s: skipping malformed dictionary line: %s", origin, detail)

    # -- files ---------------------------------------------------------------------------

    def parse_file(self, path: Path, stack: tuple[Path, ...], included_at: Origin | None) -> None:
        # Problems opening a file are reported where it is included (or as the file itself).
        at_file = str(included_at.file) if included_at else str(path)
        at_line = included_at.line if included_at else None
        real = path.resolve()
        if real in stack:
            raise DictionaryError(f"{path} includes itself", file=at_file, line=at_line)
        try:
            text = path.read_bytes().decode("utf-8", errors="replace")
        except FileNotFoundError:
            detail = f"included file {path} not found" if included_at else "file not found"
            raise DictionaryError(detail, file=at_file, line=at_line) from None
        except OSError as exc:
            detail = f"cannot read {path}: {exc.strerror}"
            raise DictionaryError(detail, file=at_file, line=at_line) from exc
        state = _FileState()
        for number, raw in enumerate(text.splitlines(), start=1):
            # '#' starts a comment anywhere on a line, as in FreeRADIUS.
            tokens = raw.split("#", 1)[0].split()
            if tokens:
                self._statement(tokens, Origin(path, number), state, (*stack, real))
        if state.vendor and state.block_origin is not None:
            self._malformed(state.block_origin, f"BEGIN-VENDOR {state.vendor} is never ended")

    def _statement(
        self, tokens: list[str], origin: Origin, state: _FileState, stack: tuple[Path, ...]
    ) -> None:
        keyword = tokens[0].upper()
        if keyword in ("$INCLUDE", "$INCLUDE-"):
            if len(tokens) != 2:
                self._malformed(origin, f"{keyword} takes one file name")
                return
            target = Path(tokens[1])
            if not target.is_absolute():
                target = origin.file.parent / target
            if keyword == "$INCLUDE-" and not target.exists():
                return
            self.parse_file(target, stack, origin)
        elif state.foreign_protocol:
            if keyword == "END-PROTOCOL":
                state.foreign_protocol = False
        elif keyword == "ATTRIBUTE":
            self._attribute(tokens, origin, state)
        elif keyword == "VALUE":
            # Resolved at the end: a VALUE may come before its ATTRIBUTE.
            self._pending_values.append((tokens, origin))
        elif keyword == "VENDOR":
            self._vendor(tokens, origin)
        elif keyword == "BEGIN-VENDOR":
            self._begin_vendor(tokens, origin, state)
        elif keyword == "END-VENDOR":
            if len(tokens) != 2 or tokens[1].casefold() != state.vendor.casefold():
                self._malformed(
                    origin, f"END-VENDOR does not close the open block ({state.vendor})"
                )
            state.vendor, state.skip_block, state.block_origin = "", "", None
        elif self.strict:
            raise DictionaryError(
                f"unknown keyword {tokens[0]!r}", file=str(origin.file), line=origin.line
            )
        elif keyword in ("BEGIN-TLV", "BEGIN"):
            state.nesting += 1
        elif keyword in ("END-TLV", "END"):
            state.nesting = max(0, state.nesting - 1)
        elif keyword == "BEGIN-PROTOCOL":
            state.foreign_protocol = len(tokens) > 1 and tokens[1].upper() != "RADIUS"
        else:
            # FreeRADIUS 4 keywords (FLAGS, STRUCT, MEMBER, ENUM, ALIAS, PROTOCOL, ...).
            self._unsupported(origin, f"keyword {keyword}", f"the {keyword} keyword")

    # -- statements ----------------------------------------------------------------------

    def _vendor(self, tokens: list[str], origin: Origin) -> None:
        if len(tokens) not in (3, 4) or not _NAME_RE.fullmatch(tokens[1]):
            self._malformed(origin, "VENDOR takes a name, a number and an optional format=")
            return
        name, number = tokens[1], _number(tokens[2])
        limit = 2**24 - 1 if self.strict else 2**32 - 1  # RFC 2865 §5.26: high octet is 0
        if number is None or not 0 < number <= limit:
            self._malformed(origin, f"bad vendor id {tokens[2]!r} for {name}")
            return
        key = name.casefold()
        if len(tokens) == 4 and tokens[3].replace(" ", "") != "format=1,1":
            # pyrad only writes the RFC 2865 §5.26 layout: one octet type, one octet length.
            self._unsupported_vendors.add(key)
            self._unsupported(origin, f"vendor {key}", f"vendor {name} ({tokens[3]})")
            return
        old = self.model.vendors.get(key)
        if old is not None and old.id != number and self.strict:
            self._malformed(origin, f"vendor {name} already has id {old.id} ({old.origin})")
        self._unsupported_vendors.discard(key)
        self.model.vendors[key] = VendorDef(name, number, origin)

    def _begin_vendor(self, tokens: list[str], origin: Origin, state: _FileState) -> None:
        if state.vendor:
            self._malformed(origin, f"BEGIN-VENDOR inside the open block of {state.vendor}")
        if len(tokens) not in (2, 3):
            self._malformed(origin, "BEGIN-VENDOR takes a vendor name and an optional format=")
            return
        key = tokens[1].casefold()
        state.block_origin, state.vendor = origin, tokens[1]
        if len(tokens) == 3:
            # format=Extended-Vendor-Specific-N: RFC 6929 extended VSAs, which pyrad lacks.
            state.skip_block = f"extended VSA block of {tokens[1]}"
            self._unsupported(origin, "extended vendor block", state.skip_block)
        elif key in self._unsupported_vendors:
            state.skip_block = f"vendor {key}"  # its VENDOR line was reported already
        elif key not in self.model.vendors:
            state.skip_block = f"block of unknown vendor {tokens[1]}"
            self._malformed(origin, f"BEGIN-VENDOR of unknown vendor {tokens[1]}")
        else:
            state.vendor, state.skip_block = self.model.vendors[key].name, ""

    def _attribute(self, tokens: list[str], origin: Origin, state: _FileState) -> None:
        if len(tokens) not in (4, 5) or not _NAME_RE.fullmatch(tokens[1]):
            self._malformed(origin, "ATTRIBUTE takes a name, a code, a type and optional flags")
            return
        name, code_text, type_text = tokens[1], tokens[2], tokens[3]
        if state.nesting:
            self._unsupported(origin, "tlv block", f"{name} inside a BEGIN-TLV block", name)
            return
        if state.skip_block:
            self._unsupported(origin, state.skip_block, f"{name} ({state.skip_block})", name)
            return
        vendor = state.vendor
        has_tag, encrypt = False, 0
        if len(tokens) == 5:
            extra = tokens[4]
            if extra.casefold() in self.model.vendors and "=" not in extra:
                vendor = self.model.vendors[extra.casefold()].name
            elif extra.casefold() in self._unsupported_vendors:
                self._unsupported(origin, f"vendor {extra.casefold()}", f"vendor {extra}", name)
                return
            else:
                flags = self._flags(extra, name, origin)
                if flags is None:
                    return
                has_tag, encrypt = flags
        codes = tuple(_number(part) for part in code_text.split("."))
        # Vendor type 0 fits a VSA (RFC 2865 §5.26); attribute type 0 is not assigned.
        lowest = 0 if vendor else 1
        if any(c is None or c < lowest for c in codes):
            self._malformed(origin, f"bad attribute code {code_text!r} for {name}", name)
            return
        wire_codes = tuple(c for c in codes if c is not None)
        datatype = type_text.lower().split("[", 1)[0]  # octets[16]: the size is advisory
        datatype = _TYPE_ALIASES.get(datatype, datatype)
        if datatype not in PYRAD_TYPES:
            self._unsupported(
                origin, f"type {datatype}", f"{name}: pyrad has no type {datatype}", name
            )
            return
        if any(c > _MAX_WIRE_CODE for c in wire_codes):
            self._unsupported(
                origin, "internal", f"{name}: code {code_text} is not a wire code", name
            )
            return
        if len(wire_codes) > 1 and not self._tlv_parent_ok(vendor, wire_codes, datatype):
            self._unsupported(origin, "sub-attribute", f"{name}: nested or orphan TLV member", name)
            return
        self._define(AttributeDef(name, vendor, wire_codes, datatype, has_tag, encrypt, origin))

    def _tlv_parent_ok(self, vendor: str, codes: tuple[int, ...], datatype: str) -> bool:
        """pyrad handles one level of TLV whose parent it knows; deeper nesting it skips."""
        return len(codes) == 2 and datatype != "tlv" and (vendor.casefold(), codes[0]) in self._tlvs

    def _flags(self, text: str, name: str, origin: Origin) -> tuple[bool, int] | None:
        has_tag, encrypt = False, 0
        for flag in text.split(","):
            key, _, value = flag.partition("=")
            if key == "has_tag" and not value:
                has_tag = True
            elif key == "encrypt" and value in ("1", "2", "3"):
                encrypt = int(value)
            elif key in _HARMLESS_FLAGS and not self.strict:
                continue
            elif key == "encrypt" or (self.strict and key == "has_tag"):
                self._malformed(origin, f"bad flag {flag!r} for {name}", name)
                return None
            else:
                # array, virtual, and FreeRADIUS 4 flags (enum=, clone=, ref=, ...).
                self._unsupported(origin, f"flag {key}", f"{name} with flag {flag}", name)
                return None
        return has_tag, encrypt

    def _define(self, attr: AttributeDef) -> None:
        key = attr.name.casefold()
        old = self.model.attributes.get(key)
        if old is not None and not old.same_definition(attr) and self.strict:
            raise DictionaryError(
                f"{attr.name} is already defined differently at {old.origin}",
                file=str(attr.origin.file),
                line=attr.origin.line,
            )
        # A later definition replaces an earlier one and moves to the end, as in pyrad,
        # so that of two names for one code the later one is used when decoding.
        self.model.attributes.pop(key, None)
        self.model.attributes[key] = attr
        self._skipped_names.discard(key)
        if len(attr.codes) == 1:
            tlv_key = (attr.vendor.casefold(), attr.codes[0])
            if attr.type == "tlv":
                self._tlvs.add(tlv_key)
            else:
                self._tlvs.discard(tlv_key)

    def finish(self) -> DictModel:
        for tokens, origin in self._pending_values:
            self._value(tokens, origin)
        return self.model

    def _value(self, tokens: list[str], origin: Origin) -> None:
        if len(tokens) != 4:
            self._malformed(origin, "VALUE takes an attribute, a name and a number")
            return
        attr_name, name, number_text = tokens[1:]
        key = attr_name.casefold()
        attr = self.model.attributes.get(key)
        if attr is None:
            if key in self._skipped_names:
                return  # its attribute was skipped and already reported
            self._unsupported(origin, "orphan value", f"VALUE for unknown attribute {attr_name}")
            return
        limits = INTEGER_RANGES.get(attr.type)
        if limits is None:
            self._unsupported(origin, "value type", f"VALUE for {attr.name}, which is {attr.type}")
            return
        negative = number_text.startswith("-")
        number = _number(number_text.removeprefix("-"))
        if number is not None and negative:
            number = -number
        if number is None or not limits[0] <= number <= limits[1]:
            self._malformed(origin, f"bad number {number_text!r} for {attr.name} {name}")
            return
        values = self.model.values.setdefault(key, {})
        old = values.get(name.casefold())
        if old is not None and old.number != number and self.strict:
            self._malformed(origin, f"{attr.name} {name} is already {old.number} ({old.origin})")
        values[name.casefold()] = ValueDef(attr.name, name, number, origin)


def _number(text: str) -> int | None:
    if not _NUMBER_RE.fullmatch(text):
        return None
    return int(text, 16) if text.startswith("0x") else int(text)


def parse(path: Path, *, strict: bool) -> DictModel:
    """Read ``path`` and its ``$INCLUDE`` files into a model; see the module docstring."""
    parser = _Parser(strict=strict)
    parser.parse_file(path, (), None)
    return parser.finish()


def merge(base: DictModel, top: DictModel) -> DictModel:
    """Lay ``top`` over ``base``: every name ``top`` defines is ``top``'s alone.

    Attributes of ``base`` named like one of ``top``'s are dropped together with their values
    (identical duplicates are fine, they just disappear); so are the attributes of a vendor
    whose name ``top`` gives another id. ``top``'s definitions come last so that pyrad, which
    lets the last definition of a code win when decoding, decodes with ``top``'s names.
    """
    result = DictModel(skipped=base.skipped + top.skipped)
    clashing = {
        k for k, v in base.vendors.items() if k in top.vendors and top.vendors[k].id != v.id
    }
    for key, vendor in base.vendors.items():
        if key not in top.vendors:
            result.vendors[key] = vendor
    for key, attr in base.attributes.items():
        vendor_key = attr.vendor.casefold()
        if key in top.attributes:
            if not attr.same_definition(top.attributes[key]):
                logger.debug(
                    "%s: %s is defined by %s, keeping that",
                    attr.origin,
                    attr.name,
                    top.attributes[key].origin,
                )
            continue
        if vendor_key in clashing:
            logger.debug(
                "%s: vendor %s has another id in %s, dropping %s",
                attr.origin,
                attr.vendor,
                top.vendors[vendor_key].origin,
                attr.name,
            )
            continue
        if vendor_key in top.vendors:
            # Same vendor and id, maybe spelt differently: pyrad matches names exactly.
            attr = AttributeDef(
                attr.name,
                top.vendors[vendor_key].name,
                attr.codes,
                attr.type,
                attr.has_tag,
                attr.encrypt,
                attr.origin,
            )
        result.attributes[key] = attr
    for key, values in base.values.items():
        if key in result.attributes:
            result.values[key] = dict(values)
    result.vendors.update(top.vendors)
    result.attributes.update(top.attributes)
    for key, values in top.values.items():
        result.values[key] = dict(values)
    return result


def render(model: DictModel) -> tuple[str, list[Origin | None]]:
    """Write ``model`` in the subset pyrad reads; element i of the list is line i+1's origin."""
    lines: list[str] = []
    origins: list[Origin | None] = []

    def emit(line: str, origin: Origin | None) -> None:
        lines.append(line)
        origins.append(origin)

    def vendor_name(attr: AttributeDef) -> str:
        # The VENDOR line that counts may spell the name differently from the one in force
        # when the attribute was read; pyrad matches names exactly.
        return model.vendors[attr.vendor.casefold()].name if attr.vendor else ""

    def wire_key(attr: AttributeDef) -> tuple[int, int]:
        return (model.vendors[attr.vendor.casefold()].id if attr.vendor else 0, attr.codes[0])

    for vendor_def in model.vendors.values():
        emit(f"VENDOR {vendor_def.name} {vendor_def.id}", vendor_def.origin)
    top_level = [a for a in model.attributes.values() if len(a.codes) == 1]
    # pyrad keeps the last definition of a code. TLV members go after all of them, and only
    # when that last definition of their parent's code is still a TLV (merging may replace
    # the parent with an attribute of ours).
    last_at_code = {wire_key(a): a for a in top_level}
    members = [
        a
        for a in model.attributes.values()
        if len(a.codes) > 1
        and (parent := last_at_code.get(wire_key(a))) is not None
        and parent.type == "tlv"
    ]
    block = ""
    for attr in top_level + members:
        vendor = vendor_name(attr)
        if vendor != block:
            if block:
                emit(f"END-VENDOR {block}", None)
            if vendor:
                emit(f"BEGIN-VENDOR {vendor}", None)
            block = vendor
        flags = ",".join(
            (["has_tag"] if attr.has_tag else [])
            + ([f"encrypt={attr.encrypt}"] if attr.encrypt else [])
        )
        code = ".".join(str(c) for c in attr.codes)
        emit(f"ATTRIBUTE {attr.name} {code} {attr.type} {flags}".rstrip(), attr.origin)
    if block:
        emit(f"END-VENDOR {block}", None)
    for key, values in model.values.items():
        attr_name = model.attributes[key].name
        for value in values.values():
            emit(f"VALUE {attr_name} {value.name} {value.number}", value.origin)
    return "\n".join(lines) + "\n", origins
