"""The attribute catalogue: what the loaded RADIUS dictionaries define, and value encoding.

``AttributeCatalog.load`` reads our ``dictionaries/dictionary`` strictly and, after it, the
``dictionary`` file of each extra directory (e.g. an installed FreeRADIUS's
``/usr/share/freeradius``) leniently; names we define keep our definition. Parsing lives in
:mod:`radius_contracts.radius.dictfile`; the pyrad ``Dictionary`` built from the result is
available to the wire code as :attr:`AttributeCatalog.pyrad_dictionary`.

``check_value``/``encode_value`` turn the text a layout template renders into value octets.
They never add what the codec adds on the wire: the attribute header, the tag of a
``has_tag`` attribute (RFC 2868 §3: an octet before a string, the first octet of an integer)
or the encryption of an ``encrypt=`` attribute. Their length checks leave room for those.
"""

from __future__ import annotations

import io
import ipaddress
import logging
import re
import struct
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType

from pyrad.dictionary import Dictionary, ParseError
from pyrad.tools import EncodeAscendBinary

from radius_contracts.errors import DictionaryError
from radius_contracts.radius import dictfile

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class AttributeSpec:
    """One attribute as the loaded dictionaries define it."""

    name: str
    code: int
    type: str  # dictionary type name: string, octets, ipaddr, integer, date, ipv6addr, ...
    vendor: str | None = None  # dictionary vendor name, None for standard attributes
    vendor_id: int | None = None
    has_tag: bool = False
    encrypt: int = 0  # 0 none, 1 User-Password style, 2 Tunnel-Password, 3 Ascend
    values: Mapping[str, int] = field(default_factory=dict)  # named VALUEs


class AttributeCatalog:
    """Attributes and vendors of the loaded dictionaries, looked up by name."""

    __slots__ = (
        "_by_code",
        "_by_folded",
        "_by_name",
        "_pyrad",
        "_specs",
        "_vendors",
        "_vendors_folded",
    )

    def __init__(
        self,
        specs: Iterable[AttributeSpec],
        vendors: Mapping[str, int],
        *,
        pyrad_dictionary: Dictionary | None = None,
    ) -> None:
        """Index ``specs``; where two share a name or a code, the earlier one wins."""
        self._specs = tuple(specs)
        self._vendors: Mapping[str, int] = MappingProxyType(dict(vendors))
        self._vendors_folded = {name.casefold(): (name, number) for name, number in vendors.items()}
        self._pyrad = pyrad_dictionary
        self._by_name: dict[str, AttributeSpec] = {}
        self._by_folded: dict[str, AttributeSpec] = {}
        self._by_code: dict[tuple[int | None, int], AttributeSpec] = {}
        for spec in self._specs:
            self._by_name.setdefault(spec.name, spec)
            self._by_folded.setdefault(spec.name.casefold(), spec)
            self._by_code.setdefault((spec.vendor_id, spec.code), spec)

    @classmethod
    def load(cls, main_file: Path, extra_dirs: Sequence[Path] = ()) -> AttributeCatalog:
        """Load ``main_file`` (strictly) and each extra directory's ``dictionary`` (leniently).

        Raises DictionaryError naming the file and line of the first problem in our files, or
        a missing file. An extra path that is a file rather than a directory is read as is.
        """
        ours = dictfile.parse(main_file, strict=True)
        merged = dictfile.DictModel()
        for extra in extra_dirs:
            path = extra / "dictionary" if extra.is_dir() else extra
            layer = dictfile.parse(path, strict=False)
            logger.info(
                "read %d attributes from %s, skipped %d definitions pyrad cannot use",
                len(layer.attributes),
                path,
                layer.skipped,
            )
            merged = dictfile.merge(merged, layer)
        merged = dictfile.merge(merged, ours)
        pyrad_dict = _build_pyrad(merged)
        # Ours first, so that ours win lookups by case-folded name and by code.
        order = list(ours.attributes) + [k for k in merged.attributes if k not in ours.attributes]
        specs = []
        for key in order:
            spec = _spec_from_pyrad(pyrad_dict, merged.attributes[key].name)
            if spec is not None:
                specs.append(spec)
        vendors = {name: vid for name, vid in pyrad_dict.vendors.forward.items() if name}
        return cls(specs, vendors, pyrad_dictionary=pyrad_dict)

    def get(self, name: str) -> AttributeSpec | None:
        """The attribute called ``name``; the exact spelling first, then ignoring case."""
        return self._by_name.get(name) or self._by_folded.get(name.casefold())

    def by_code(self, code: int, vendor_id: int | None = None) -> AttributeSpec | None:
        """The attribute a packet carries as ``code`` (inside vendor ``vendor_id``'s VSA)."""
        return self._by_code.get((vendor_id, code))

    def __iter__(self) -> Iterator[AttributeSpec]:
        return iter(self._specs)

    def __len__(self) -> int:
        return len(self._specs)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def vendor(self, name: str) -> tuple[str, int] | None:
        """The vendor called ``name`` in any case: its dictionary spelling and its number."""
        return self._vendors_folded.get(name.casefold())

    @property
    def vendors(self) -> Mapping[str, int]:
        """Vendor name to IANA enterprise number."""
        return self._vendors

    @property
    def pyrad_dictionary(self) -> Dictionary:
        """The pyrad ``Dictionary`` for packet encoding and decoding (radius/ only)."""
        if self._pyrad is None:
            raise RuntimeError("this catalog was not loaded from dictionary files")
        return self._pyrad


def _build_pyrad(model: dictfile.DictModel) -> Dictionary:
    text, origins = dictfile.render(model)
    result = Dictionary()
    try:
        result.ReadDictionary(io.StringIO(text))
    except ParseError as exc:
        # Should not happen (we only feed pyrad what it accepts); still name the real line.
        origin = origins[exc.line - 1] if 0 < exc.line <= len(origins) else None
        raise DictionaryError(
            f"pyrad rejected the definition: {exc.msg}",
            file=str(origin.file) if origin else None,
            line=origin.line if origin else None,
        ) from exc
    return result


def _spec_from_pyrad(pyrad_dict: Dictionary, name: str) -> AttributeSpec | None:
    attr = pyrad_dict.attributes.get(name)
    # TLVs and their members cannot be written as one text value, so layouts cannot use them.
    if attr is None or attr.type == "tlv" or attr.is_sub_attribute:
        return None
    values: dict[str, int] = {}
    if attr.type in dictfile.INTEGER_RANGES:
        signed = attr.type == "signed"
        for value_name, octets in attr.values.forward.items():
            values[value_name] = int.from_bytes(octets, "big", signed=signed)
    return AttributeSpec(
        name=attr.name,
        code=attr.code,
        type=attr.type,
        vendor=attr.vendor or None,
        vendor_id=pyrad_dict.vendors.forward[attr.vendor] if attr.vendor else None,
        has_tag=attr.has_tag,
        encrypt=attr.encrypt,
        values=MappingProxyType(values),
    )


# -- values ----------------------------------------------------------------------------------

_MAX_VALUE = 253  # RFC 2865 §5: the Length octet counts the 2 header octets, 255 at most
_IFID_RE = re.compile(
    r"([0-9A-Fa-f]{1,4}):([0-9A-Fa-f]{1,4}):([0-9A-Fa-f]{1,4}):([0-9A-Fa-f]{1,4})"
)
_ETHER_RE = re.compile(r"[0-9A-Fa-f]{1,2}([:-])(?:[0-9A-Fa-f]{1,2}\1){4}[0-9A-Fa-f]{1,2}")
_DECIMAL_RE = re.compile(r"-?[0-9]+")
_HEX_RE = re.compile(r"(?:[0-9A-Fa-f]{2})*")
_INTEGER_SIZES = {"byte": 1, "short": 2, "integer": 4, "signed": 4, "integer64": 8}


# RFC 2868 §3.1: "Valid values for this field are 0x01 through 0x1F"; 0 means "no tag".
MAX_TAG = 0x1F


def split_tag(reference: str) -> tuple[str, int | None]:
    """Split a layout row's attribute reference: ``Tunnel-Type:1`` → ``("Tunnel-Type", 1)``.

    A reference without ``:`` has no tag (None). Raises ValueError for a tag that is not a
    number in 1..31 (RFC 2868 §3.1; a tag of 0 is how a packet says "untagged").
    """
    name, colon, text = reference.partition(":")
    if not colon:
        return reference, None
    if not _DECIMAL_RE.fullmatch(text) or not 1 <= int(text) <= MAX_TAG:
        raise ValueError(f"tag {text!r} of {name} is not a number in 1..{MAX_TAG} (RFC 2868 §3.1)")
    return name, int(text)


def tagged_name(name: str, tag: int | None) -> str:
    """The reverse of :func:`split_tag`: ``Tunnel-Type:1``, or ``name`` alone without a tag."""
    return name if tag is None else f"{name}:{tag}"


def check_value(spec: AttributeSpec, value: str) -> str | None:
    """Return why ``value`` cannot be encoded as ``spec``'s type, or None when it can."""
    try:
        encode_value(spec, value)
    except ValueError as exc:
        return str(exc)
    return None


def encode_value(spec: AttributeSpec, value: str) -> bytes:
    """Encode the textual ``value`` to attribute value bytes (no header); ValueError if invalid.

    Tags and encryption are the codec's job (see the module docstring). Integer types take a
    decimal number or one of the attribute's named VALUEs; ``date`` takes unix seconds (all
    digits) or an ISO 8601 datetime (UTC when it has no offset); ``octets`` takes
    ``0x``-prefixed hex or raw text (UTF-8); ``ipv6prefix`` takes ``address/length``, a bare
    address meaning /128.
    """
    encoder = _ENCODERS.get(spec.type)
    if encoder is None:
        raise ValueError(f"values of type {spec.type} cannot be written as text ({spec.name})")
    return encoder(spec, value)


def _show(value: str) -> str:
    return repr(value if len(value) <= 40 else value[:37] + "...")


def _max_length(spec: AttributeSpec) -> int:
    if spec.encrypt == 1:
        return 128  # RFC 2865 §5.2: the hidden password is at most 128 octets
    if spec.encrypt == 2:
        # RFC 2868 §3.5: tag, 2 salt octets, then a length octet plus the data padded to
        # 16-octet blocks; 240 octets of blocks fit in 253, one of them is the length octet.
        return 239
    if spec.has_tag:
        return _MAX_VALUE - 1  # RFC 2868 §3: the tag octet precedes the value
    return _MAX_VALUE


def _sized(spec: AttributeSpec, value: str, octets: bytes) -> bytes:
    if not octets:
        # RFC 2865 §5: "Strings of length zero (0) MUST NOT be sent; omit the entire attribute
        # instead." The same holds for text.
        raise ValueError(f"{spec.name} cannot be sent empty (RFC 2865 §5)")
    limit = _max_length(spec)
    if len(octets) > limit:
        raise ValueError(
            f"{_show(value)} is {len(octets)} bytes, more than the {limit} that fit in {spec.name}"
        )
    return octets


def _string(spec: AttributeSpec, value: str) -> bytes:
    return _sized(spec, value, value.encode("utf-8"))


def _octets(spec: AttributeSpec, value: str) -> bytes:
    if not value.startswith("0x"):
        return _sized(spec, value, value.encode("utf-8"))
    if not _HEX_RE.fullmatch(value[2:]):
        raise ValueError(f"{_show(value)} is not valid hex for {spec.name}")
    return _sized(spec, value, bytes.fromhex(value[2:]))


def _ipaddr(spec: AttributeSpec, value: str) -> bytes:
    try:
        return ipaddress.IPv4Address(value).packed
    except ValueError:
        raise ValueError(f"{_show(value)} is not an IPv4 address for {spec.name}") from None


def _ipv6addr(spec: AttributeSpec, value: str) -> bytes:
    try:
        if "%" in value:  # a zone index has no place in a packet
            raise ValueError
        return ipaddress.IPv6Address(value).packed
    except ValueError:
        raise ValueError(f"{_show(value)} is not an IPv6 address for {spec.name}") from None


def _combo_ip(spec: AttributeSpec, value: str) -> bytes:
    try:
        return _ipaddr(spec, value)
    except ValueError:
        pass
    try:
        return _ipv6addr(spec, value)
    except ValueError:
        raise ValueError(f"{_show(value)} is not an IPv4 or IPv6 address for {spec.name}") from None


def _ipv6prefix(spec: AttributeSpec, value: str) -> bytes:
    address, slash, length_text = value.partition("/")
    try:
        if "%" in address or (slash and not _DECIMAL_RE.fullmatch(length_text)):
            raise ValueError
        length = int(length_text) if slash else 128  # a bare address is a /128
        network = ipaddress.IPv6Network((address, length), strict=False)
    except ValueError:
        raise ValueError(
            f"{_show(value)} is not an IPv6 prefix (address/length) for {spec.name}"
        ) from None
    if network.network_address != ipaddress.IPv6Address(address):
        # RFC 3162 §2.3: "Bits outside of the Prefix-Length, if included, must be zero."
        raise ValueError(
            f"{_show(value)} has bits set beyond /{length} for {spec.name} (RFC 3162 §2.3)"
        )
    # RFC 3162 §2.3: Reserved (0), Prefix-Length, then only the octets the prefix covers.
    return bytes((0, length)) + network.network_address.packed[: (length + 7) // 8]


def _ifid(spec: AttributeSpec, value: str) -> bytes:
    match = _IFID_RE.fullmatch(value)
    if match is None:
        raise ValueError(
            f"{_show(value)} is not an interface id (xxxx:xxxx:xxxx:xxxx) for {spec.name}"
        )
    return struct.pack("!4H", *(int(group, 16) for group in match.groups()))


def _ether(spec: AttributeSpec, value: str) -> bytes:
    if not _ETHER_RE.fullmatch(value):
        raise ValueError(f"{_show(value)} is not a MAC address for {spec.name}")
    return bytes(int(part, 16) for part in re.split("[:-]", value))


def _integer(spec: AttributeSpec, value: str) -> bytes:
    low, high = dictfile.INTEGER_RANGES[spec.type]
    if spec.has_tag and spec.type == "integer":
        high = 2**24 - 1  # RFC 2868 §3: the tag takes the first of the four octets
    named = spec.values.get(value)
    if named is None:
        folded = value.casefold()
        named = next((n for k, n in spec.values.items() if k.casefold() == folded), None)
    if named is not None:
        number = named
    elif _DECIMAL_RE.fullmatch(value):
        number = int(value)
    elif spec.values:
        raise ValueError(f"{_show(value)} is neither a number nor a named value of {spec.name}")
    else:
        raise ValueError(f"{_show(value)} is not an integer for {spec.name}")
    if not low <= number <= high:
        raise ValueError(f"{_show(value)} is out of range {low}..{high} for {spec.name}")
    return number.to_bytes(_INTEGER_SIZES[spec.type], "big", signed=spec.type == "signed")


def _date(spec: AttributeSpec, value: str) -> bytes:
    # RFC 2865 §5 "time": 32 bit unsigned seconds since 1970-01-01 00:00:00 UTC.
    if _DECIMAL_RE.fullmatch(value):
        seconds = int(value)
    else:
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(
                f"{_show(value)} is neither unix seconds nor an ISO 8601 datetime for {spec.name}"
            ) from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        seconds = int(moment.timestamp())
    if not 0 <= seconds < 2**32:
        raise ValueError(f"{_show(value)} is outside what {spec.name} can hold (1970..2106)")
    return seconds.to_bytes(4, "big")


def _abinary(spec: AttributeSpec, value: str) -> bytes:
    try:
        if not value.strip():
            raise ValueError  # pyrad would turn nothing into an all-defaults filter
        return bytes(EncodeAscendBinary(value))
    except (ValueError, TypeError, KeyError):
        raise ValueError(f"{_show(value)} is not an Ascend filter for {spec.name}") from None


_ENCODERS: dict[str, Callable[[AttributeSpec, str], bytes]] = {
    "string": _string,
    "octets": _octets,
    "ipaddr": _ipaddr,
    "ipv6addr": _ipv6addr,
    "combo-ip": _combo_ip,
    "ipv6prefix": _ipv6prefix,
    "ifid": _ifid,
    "ether": _ether,
    "byte": _integer,
    "short": _integer,
    "integer": _integer,
    "integer64": _integer,
    "signed": _integer,
    "date": _date,
    "abinary": _abinary,
}
