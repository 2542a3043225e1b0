"""The attribute catalogue: our dictionaries, extra directories, and value encoding."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from pathlib import Path

import pytest
from pyrad.packet import AuthPacket, Packet

from radius_contracts.errors import DictionaryError
from radius_contracts.radius import dictionary
from radius_contracts.radius.dictionary import (
    AttributeCatalog,
    AttributeSpec,
    check_value,
    encode_value,
)

REPO = Path(__file__).resolve().parents[3]
SHIPPED = REPO / "dictionaries" / "dictionary"
FREERADIUS = Path("/usr/share/freeradius")


@pytest.fixture(scope="module")
def catalog() -> AttributeCatalog:
    return AttributeCatalog.load(SHIPPED)


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text)
    return path


# -- the shipped dictionaries ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "code", "type_", "vendor_id"),
    [
        ("User-Name", 1, "string", None),
        ("User-Password", 2, "string", None),
        ("Framed-IP-Address", 8, "ipaddr", None),
        ("Class", 25, "octets", None),
        ("Acct-Status-Type", 40, "integer", None),
        ("Acct-Session-Id", 44, "string", None),
        ("Acct-Input-Gigawords", 52, "integer", None),
        ("Event-Timestamp", 55, "date", None),
        ("NAS-Port-Type", 61, "integer", None),
        ("Acct-Tunnel-Connection", 68, "string", None),
        ("EAP-Message", 79, "octets", None),
        ("Message-Authenticator", 80, "octets", None),
        ("Acct-Interim-Interval", 85, "integer", None),
        ("NAS-Port-Id", 87, "string", None),
        ("Framed-Pool", 88, "string", None),
        ("Framed-Interface-Id", 96, "ifid", None),
        ("Framed-IPv6-Prefix", 97, "ipv6prefix", None),
        ("Login-IPv6-Host", 98, "ipv6addr", None),
        ("Framed-IPv6-Route", 99, "string", None),
        ("Framed-IPv6-Pool", 100, "string", None),
        ("Error-Cause", 101, "integer", None),
        ("Delegated-IPv6-Prefix", 123, "ipv6prefix", None),
        ("Framed-IPv6-Address", 168, "ipv6addr", None),
        ("DNS-Server-IPv6-Address", 169, "ipv6addr", None),
        ("Route-IPv6-Information", 170, "ipv6prefix", None),
        ("Delegated-IPv6-Prefix-Pool", 171, "string", None),
        ("Stateful-IPv6-Address-Pool", 172, "string", None),
        ("Mikrotik-Group", 3, "string", 14988),
        ("Mikrotik-Rate-Limit", 8, "string", 14988),
        ("Mikrotik-Address-List", 19, "string", 14988),
        ("Mikrotik-Delegated-IPv6-Pool", 22, "string", 14988),
        ("Cisco-AVPair", 1, "string", 9),
        ("Cisco-Account-Info", 250, "string", 9),
        ("Huawei-Input-Average-Rate", 2, "integer", 2011),
        ("Huawei-Input-Peak-Rate", 3, "integer", 2011),
        ("Huawei-Output-Average-Rate", 5, "integer", 2011),
        ("Huawei-Output-Peak-Rate", 6, "integer", 2011),
        ("Huawei-Domain-Name", 138, "string", 2011),
        ("ERX-Virtual-Router-Name", 1, "string", 4874),
        ("ERX-Primary-Dns", 4, "ipaddr", 4874),
        ("ERX-Ingress-Policy-Name", 10, "string", 4874),
        ("ERX-Egress-Policy-Name", 11, "string", 4874),
        ("ERX-Qos-Profile-Name", 26, "string", 4874),
        ("ERX-Service-Activate", 65, "string", 4874),
        ("ERX-Service-Deactivate", 66, "string", 4874),
        ("ERX-Ipv6-Delegated-Pool-Name", 161, "string", 4874),
        ("MS-CHAP-Response", 1, "octets", 311),
        ("MS-CHAP-Error", 2, "string", 311),
        ("MS-CHAP-Challenge", 11, "octets", 311),
        ("MS-CHAP2-Response", 25, "octets", 311),
        ("MS-CHAP2-Success", 26, "octets", 311),
        ("MS-Primary-DNS-Server", 28, "ipaddr", 311),
        ("MS-Secondary-DNS-Server", 29, "ipaddr", 311),
        ("WISPr-Bandwidth-Max-Up", 7, "integer", 14122),
        ("WISPr-Bandwidth-Max-Down", 8, "integer", 14122),
        ("WISPr-Session-Terminate-Time", 9, "string", 14122),
        ("RP-Upstream-Speed-Limit", 1, "integer", 10055),
        ("RP-Downstream-Speed-Limit", 2, "integer", 10055),
        ("RP-HURL", 3, "string", 10055),
        ("RP-Max-Sessions-Per-User", 5, "integer", 10055),
        ("Accel-VRF-Name", 1, "string", 55999),
    ],
)
def test_shipped_dictionary_defines_attribute(
    catalog: AttributeCatalog, name: str, code: int, type_: str, vendor_id: int | None
) -> None:
    spec = catalog.get(name)
    assert spec is not None, name
    assert (spec.name, spec.code, spec.type, spec.vendor_id) == (name, code, type_, vendor_id)
    assert (spec.vendor is None) == (vendor_id is None)


@pytest.mark.parametrize(
    ("name", "has_tag", "encrypt"),
    [
        ("User-Password", False, 1),
        ("Tunnel-Type", True, 0),
        ("Tunnel-Medium-Type", True, 0),
        ("Tunnel-Private-Group-Id", True, 0),
        ("Tunnel-Password", True, 2),
        ("MS-MPPE-Send-Key", False, 2),
        ("MS-MPPE-Recv-Key", False, 2),
        ("ERX-Service-Activate", True, 0),
        ("User-Name", False, 0),
    ],
)
def test_shipped_dictionary_flags(
    catalog: AttributeCatalog, name: str, has_tag: bool, encrypt: int
) -> None:
    spec = catalog.get(name)
    assert spec is not None
    assert (spec.has_tag, spec.encrypt) == (has_tag, encrypt)


@pytest.mark.parametrize(
    ("attribute", "value", "number"),
    [
        ("Service-Type", "Framed-User", 2),
        ("Service-Type", "Authorize-Only", 17),
        ("Framed-Protocol", "PPP", 1),
        ("NAS-Port-Type", "Ethernet", 15),
        ("NAS-Port-Type", "PPPoEoVLAN", 33),
        ("Acct-Status-Type", "Interim-Update", 3),
        ("Acct-Status-Type", "Accounting-On", 7),
        ("Acct-Status-Type", "Tunnel-Start", 9),
        ("Acct-Terminate-Cause", "Admin-Reset", 6),
        ("Acct-Terminate-Cause", "Session-Timeout", 5),
        ("Tunnel-Type", "L2TP", 3),
        ("Tunnel-Type", "VLAN", 13),
        ("Tunnel-Medium-Type", "IEEE-802", 6),
        ("Error-Cause", "Residual-Session-Context-Removed", 201),
        ("Error-Cause", "Session-Context-Not-Found", 503),
        ("Error-Cause", "Multiple-Session-Selection-Unsupported", 508),
        ("MS-MPPE-Encryption-Policy", "Encryption-Required", 2),
        ("MS-MPPE-Encryption-Types", "RC4-128bit-Allowed", 4),
    ],
)
def test_shipped_dictionary_named_values(
    catalog: AttributeCatalog, attribute: str, value: str, number: int
) -> None:
    spec = catalog.get(attribute)
    assert spec is not None
    assert spec.values[value] == number


def test_shipped_vendors(catalog: AttributeCatalog) -> None:
    assert dict(catalog.vendors) == {
        "Accel-PPP": 55999,
        "Cisco": 9,
        "ERX": 4874,
        "Huawei": 2011,
        "Microsoft": 311,
        "Mikrotik": 14988,
        "Roaring-Penguin": 10055,
        "WISPr": 14122,
    }


def test_every_shipped_file_is_included() -> None:
    master = SHIPPED.read_text()
    others = sorted(p.name for p in SHIPPED.parent.glob("dictionary.*"))
    assert others
    for name in others:
        assert f"$INCLUDE {name}\n" in master


def test_every_shipped_attribute_can_be_written_as_text(catalog: AttributeCatalog) -> None:
    # A layout row may name any of them, so check_value must understand every type.
    for spec in catalog:
        reason = check_value(spec, "")
        assert reason is None or "cannot be written" not in reason, spec
        assert 0 < spec.code < 256


def test_lookup_ignores_case_and_finds_by_code(catalog: AttributeCatalog) -> None:
    assert catalog.get("mikrotik-rate-limit") is catalog.get("Mikrotik-Rate-Limit")
    assert catalog.get("No-Such-Attribute") is None
    assert "framed-ip-address" in catalog
    erx_activate = catalog.by_code(65, 4874)
    assert erx_activate is not None and erx_activate.name == "ERX-Service-Activate"
    nas_ip = catalog.by_code(4)
    assert nas_ip is not None and nas_ip.name == "NAS-IP-Address"
    assert catalog.by_code(200, 14988) is None
    assert len(catalog) == len(list(catalog)) > 250


def test_pyrad_dictionary_round_trips_a_reply(catalog: AttributeCatalog) -> None:
    request = AuthPacket(
        id=7, secret=b"s3cret", authenticator=b"A" * 16, dict=catalog.pyrad_dictionary
    )
    reply = request.CreateReply()
    reply["Mikrotik-Rate-Limit"] = "10M/50M"
    reply["Framed-IPv6-Prefix"] = "2001:db8:1::/48"
    reply["Service-Type"] = "Framed-User"
    raw = reply.ReplyPacket()
    decoded = Packet(packet=raw, secret=b"s3cret", dict=catalog.pyrad_dictionary)
    assert decoded["Mikrotik-Rate-Limit"] == ["10M/50M"]
    assert decoded["Framed-IPv6-Prefix"] == ["2001:db8:1::/48"]
    assert decoded["Service-Type"] == ["Framed-User"]


def test_load_takes_a_few_milliseconds() -> None:
    # Runs at start-up and on every SIGHUP; a generous bound catches an accidental blow-up.
    start = time.perf_counter()
    AttributeCatalog.load(SHIPPED)
    assert time.perf_counter() - start < 0.5


# -- broken files (ours are read strictly) -----------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("# ok\nATTRIBUTE A 1 string\nATRIBUTE B 2 string\n", 3, "unknown keyword"),
        ("ATTRIBUTE A 1 strng\n", 1, "strng"),
        ("ATTRIBUTE A 1 combo-ip\n", 1, "combo-ip"),
        ("ATTRIBUTE A x string\n", 1, "bad attribute code"),
        ("ATTRIBUTE A 0 string\n", 1, "bad attribute code"),
        ("ATTRIBUTE A 1\n", 1, "ATTRIBUTE takes"),
        ("ATTRIBUTE A:B 1 string\n", 1, "ATTRIBUTE takes"),
        ("ATTRIBUTE A 1 string array\n", 1, "array"),
        ("ATTRIBUTE A 1 string encrypt=9\n", 1, "encrypt=9"),
        ("ATTRIBUTE A 1 string\nATTRIBUTE A 2 string\n", 2, "already defined"),
        ("ATTRIBUTE A 1 integer\n\nVALUE B One 1\n", 3, "unknown attribute B"),
        ("ATTRIBUTE A 1 integer\nVALUE A One one\n", 2, "bad number"),
        ("ATTRIBUTE A 1 byte\nVALUE A Big 256\n", 2, "bad number"),
        ("ATTRIBUTE A 1 string\nVALUE A One 1\n", 2, "string"),
        ("BEGIN-VENDOR Nobody\n", 1, "unknown vendor"),
        ("VENDOR V 99\nBEGIN-VENDOR V\nATTRIBUTE A 1 string\n", 2, "never ended"),
        ("VENDOR V 99\nEND-VENDOR V\n", 2, "END-VENDOR"),
        ("VENDOR V 99 format=2,1\n", 1, "format=2,1"),
        ("VENDOR V 99\nBEGIN-VENDOR V format=Extended-Vendor-Specific-1\n", 2, "extended"),
        ("VENDOR V 16777216\n", 1, "vendor id"),
        ("VENDOR V 99\nVENDOR V 98\n", 2, "already has id"),
        ("$INCLUDE missing.dict\n", 1, "not found"),
    ],
)
def test_broken_dictionary_names_file_and_line(
    tmp_path: Path, text: str, line: int, words: str
) -> None:
    path = write(tmp_path, "dictionary", text)
    with pytest.raises(DictionaryError) as caught:
        AttributeCatalog.load(path)
    assert caught.value.file == str(path)
    assert caught.value.line == line
    assert words in caught.value.detail
    assert f"{path}:{line}: " in str(caught.value)


def test_error_in_included_file_names_that_file(tmp_path: Path) -> None:
    write(tmp_path, "dictionary", "# master\n$INCLUDE dictionary.part\n")
    part = write(tmp_path, "dictionary.part", "ATTRIBUTE A 1 string\nATTRIBUTE B 2 nosuchtype\n")
    with pytest.raises(DictionaryError) as caught:
        AttributeCatalog.load(tmp_path / "dictionary")
    assert (caught.value.file, caught.value.line) == (str(part), 2)


def test_missing_main_file(tmp_path: Path) -> None:
    with pytest.raises(DictionaryError) as caught:
        AttributeCatalog.load(tmp_path / "nope")
    assert caught.value.file == str(tmp_path / "nope")
    assert "not found" in str(caught.value)


def test_recursive_include(tmp_path: Path) -> None:
    write(tmp_path, "dictionary", "$INCLUDE dictionary.a\n")
    a = write(tmp_path, "dictionary.a", "\n$INCLUDE dictionary\n")
    with pytest.raises(DictionaryError) as caught:
        AttributeCatalog.load(tmp_path / "dictionary")
    assert (caught.value.file, caught.value.line) == (str(a), 2)
    assert "includes itself" in str(caught.value)


def test_optional_include_may_be_missing_and_duplicates_may_repeat(tmp_path: Path) -> None:
    write(
        tmp_path,
        "dictionary",
        "$INCLUDE- dictionary.local\n"
        "ATTRIBUTE A 1 string\n"
        "ATTRIBUTE A 1 string  # the same again is fine\n"
        "VENDOR V 99 format=1,1\n"
        "ATTRIBUTE B 7 integer V\n"
        "VALUE B Seven 0x07\n",
    )
    catalog = AttributeCatalog.load(tmp_path / "dictionary")
    b = catalog.get("B")
    assert b is not None and (b.vendor, b.vendor_id, b.code) == ("V", 99, 7)
    assert b.values == {"Seven": 7}


# -- extra directories -------------------------------------------------------------------------


def test_extra_directory_is_loaded_after_ours(tmp_path: Path) -> None:
    extra = tmp_path / "extra"
    extra.mkdir()
    write(
        extra,
        "dictionary",
        "$INCLUDE dictionary.acme\n"
        "ATTRIBUTE User-Name 1 string       # identical to ours\n"
        "ATTRIBUTE Acct-Session-Id 44 integer  # differs: ours win\n"
        "ATTRIBUTE Client-Id 4 ipaddr       # an alias for NAS-IP-Address\n"
        "VALUE Service-Type Shell-User 6    # ours own Service-Type's values\n",
    )
    write(
        extra,
        "dictionary.acme",
        "VENDOR Acme 99999\n"
        "BEGIN-VENDOR Acme\n"
        "ATTRIBUTE Acme-Speed 1 integer\n"
        "ATTRIBUTE Acme-Zone 2 string has_tag\n"
        "END-VENDOR Acme\n"
        "VALUE Acme-Speed Fast 100\n",
    )
    catalog = AttributeCatalog.load(SHIPPED, [extra])
    speed = catalog.get("Acme-Speed")
    assert speed is not None
    assert (speed.vendor, speed.vendor_id, speed.code, speed.values) == (
        "Acme",
        99999,
        1,
        {"Fast": 100},
    )
    zone = catalog.get("acme-zone")
    assert zone is not None and zone.has_tag
    assert catalog.vendors["Acme"] == 99999
    session_id = catalog.get("Acct-Session-Id")
    assert session_id is not None and session_id.type == "string"
    alias = catalog.get("Client-Id")
    assert alias is not None and alias.code == 4
    # Decoding code 4 must still give our name.
    nas_ip = catalog.by_code(4)
    assert nas_ip is not None and nas_ip.name == "NAS-IP-Address"
    assert catalog.pyrad_dictionary.attrindex.GetBackward(4) == "NAS-IP-Address"
    service_type = catalog.get("Service-Type")
    assert service_type is not None and "Shell-User" not in service_type.values
    # Ours come first when iterating.
    assert next(iter(catalog)).name == "User-Name"


def test_extra_directory_skips_what_pyrad_cannot_use(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write(
        tmp_path,
        "dictionary",
        "FLAGS internal\n"
        "ATTRIBUTE Odd-Type 200 combo-ip\n"
        "ATTRIBUTE Odd-Type-2 201 ipv4prefix\n"
        "VALUE Odd-Type Whatever 1\n"
        "ATTRIBUTE Listy 202 integer array\n"
        "ATTRIBUTE Virtual-Thing 1200 string\n"
        "ATTRIBUTE Uint 203 uint32\n"
        "ATTRIBUTE Sized 204 octets[16]\n"
        "ATTRIBUTE Broken 205\n"
        "VENDOR Wide 1234 format=2,1\n"
        "BEGIN-VENDOR Wide\n"
        "ATTRIBUTE Wide-Thing 1000 string\n"
        "END-VENDOR Wide\n"
        "VENDOR Nested 1235\n"
        "BEGIN-VENDOR Nested\n"
        "ATTRIBUTE Nested-Container 1 tlv\n"
        "BEGIN-TLV Nested-Container\n"
        "ATTRIBUTE Nested-Member 1 integer\n"
        "END-TLV Nested-Container\n"
        "ATTRIBUTE Nested-Plain 2 string\n"
        "END-VENDOR Nested\n"
        "BEGIN-PROTOCOL DHCPv6\n"
        "ATTRIBUTE Client-Identifier 1 octets\n"
        "END-PROTOCOL DHCPv6\n"
        "VALUE Nobody-Defines-This X 1\n",
    )
    with caplog.at_level(logging.DEBUG, logger="radius_contracts.radius.dictfile"):
        catalog = AttributeCatalog.load(SHIPPED, [tmp_path])
    for skipped in ("Odd-Type", "Odd-Type-2", "Listy", "Virtual-Thing", "Broken", "Wide-Thing"):
        assert catalog.get(skipped) is None, skipped
    assert catalog.get("Nested-Member") is None
    assert catalog.get("Nested-Container") is None  # a TLV is no text value
    assert catalog.get("Client-Identifier") is None  # another protocol's attribute
    uint = catalog.get("Uint")
    assert uint is not None and uint.type == "integer"
    sized = catalog.get("Sized")
    assert sized is not None and sized.type == "octets"
    plain = catalog.get("Nested-Plain")
    assert plain is not None and (plain.vendor_id, plain.code) == (1235, 2)
    assert "Wide" not in catalog.vendors
    # Malformed lines are warnings naming the line; unsupported ones are DEBUG, once per kind.
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and f"{tmp_path / 'dictionary'}:9" in warnings[0].getMessage()
    type_skips = [r for r in caplog.records if "pyrad has no type combo-ip" in r.getMessage()]
    assert len(type_skips) == 1


def test_extra_tlvs_reach_pyrad_unless_ours_take_the_parent_code(tmp_path: Path) -> None:
    write(
        tmp_path,
        "dictionary",
        "ATTRIBUTE Box 230 tlv\n"
        "ATTRIBUTE Box-Item 230.1 integer\n"
        "ATTRIBUTE Pool-Box 88 tlv  # our Framed-Pool owns code 88\n"
        "ATTRIBUTE Pool-Box-Item 88.1 integer\n"
        "VENDOR mikrotik 14988  # our vendor, spelt differently\n"
        "BEGIN-VENDOR mikrotik\n"
        "ATTRIBUTE Mikrotik-Extra 200 string\n"
        "END-VENDOR mikrotik\n",
    )
    catalog = AttributeCatalog.load(SHIPPED, [tmp_path])
    pyrad_dict = catalog.pyrad_dictionary
    assert "Box-Item" in pyrad_dict and "Pool-Box-Item" not in pyrad_dict
    assert catalog.get("Box-Item") is None  # members are no layout attributes
    framed_pool = catalog.by_code(88)
    assert framed_pool is not None and framed_pool.name == "Framed-Pool"
    extra = catalog.get("Mikrotik-Extra")
    assert extra is not None and (extra.vendor, extra.vendor_id) == ("Mikrotik", 14988)


def test_extra_vendor_with_another_id_loses_its_attributes(tmp_path: Path) -> None:
    write(
        tmp_path,
        "dictionary",
        "VENDOR Mikrotik 4242\nATTRIBUTE Mikrotik-Other 99 string Mikrotik\n",
    )
    catalog = AttributeCatalog.load(SHIPPED, [tmp_path])
    assert catalog.vendors["Mikrotik"] == 14988
    assert catalog.get("Mikrotik-Other") is None


def test_missing_extra_directory(tmp_path: Path) -> None:
    with pytest.raises(DictionaryError) as caught:
        AttributeCatalog.load(SHIPPED, [tmp_path / "absent"])
    assert "not found" in str(caught.value)


@pytest.mark.skipif(
    not (FREERADIUS / "dictionary").exists(), reason="FreeRADIUS dictionaries not installed"
)
def test_installed_freeradius_dictionaries_load(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        catalog = AttributeCatalog.load(SHIPPED, [FREERADIUS])
    # Attributes only FreeRADIUS knows about.
    aruba = catalog.get("Aruba-User-Role")
    assert aruba is not None and (aruba.vendor_id, aruba.code, aruba.type) == (14823, 1, "string")
    egress_vlan = catalog.get("Egress-VLANID")
    assert egress_vlan is not None and (egress_vlan.code, egress_vlan.vendor) == (56, None)
    # Ours win where both define a name.
    types = catalog.get("MS-MPPE-Encryption-Types")
    assert types is not None and types.values["RC4-128bit-Allowed"] == 4
    nas_ip = catalog.by_code(4)
    assert nas_ip is not None and nas_ip.name == "NAS-IP-Address"
    assert catalog.vendors["Mikrotik"] == 14988
    assert len(catalog) > 4000


# -- values ------------------------------------------------------------------------------------


def spec(
    type_: str, *, has_tag: bool = False, encrypt: int = 0, values: Mapping[str, int] | None = None
) -> AttributeSpec:
    return AttributeSpec(
        "Test-Attr", 1, type_, has_tag=has_tag, encrypt=encrypt, values=dict(values or {})
    )


GOOD = [
    (spec("string"), "alice@example.net", b"alice@example.net"),
    (spec("string"), "ü", "ü".encode()),
    (spec("string"), "x" * 253, b"x" * 253),
    (spec("string", has_tag=True), "x" * 252, b"x" * 252),
    (spec("string", encrypt=1), "p" * 128, b"p" * 128),
    (spec("string", has_tag=True, encrypt=2), "p" * 239, b"p" * 239),
    (spec("octets"), "0x0aff", b"\x0a\xff"),
    (spec("octets"), "0xABCD", b"\xab\xcd"),
    (spec("octets"), "raw text", b"raw text"),
    (spec("ipaddr"), "192.0.2.1", b"\xc0\x00\x02\x01"),
    (spec("ipv6addr"), "2001:db8::1", bytes.fromhex("20010db8000000000000000000000001")),
    (spec("ipv6prefix"), "2001:db8::/48", b"\x00\x30" + bytes.fromhex("20010db80000")),
    (spec("ipv6prefix"), "2001:db8:1:ff00::/56", b"\x00\x38" + bytes.fromhex("20010db80001ff")),
    (spec("ipv6prefix"), "2001:db8::/33", b"\x00\x21" + bytes.fromhex("20010db800")),
    (spec("ipv6prefix"), "::/0", b"\x00\x00"),
    (spec("ipv6prefix"), "2001:db8::1", b"\x00\x80" + bytes.fromhex("20010db8" + "00" * 11 + "01")),
    (spec("ifid"), "0:0:0:1", b"\x00" * 7 + b"\x01"),
    (spec("ifid"), "211:22ff:fe33:4455", bytes.fromhex("021122fffe334455")),
    (spec("integer"), "0", b"\x00\x00\x00\x00"),
    (spec("integer"), "3600", b"\x00\x00\x0e\x10"),
    (spec("integer"), "4294967295", b"\xff\xff\xff\xff"),
    (spec("integer", values={"Framed-User": 2}), "Framed-User", b"\x00\x00\x00\x02"),
    (spec("integer", values={"Framed-User": 2}), "framed-user", b"\x00\x00\x00\x02"),
    (spec("integer", values={"Framed-User": 2}), "7", b"\x00\x00\x00\x07"),
    (spec("integer", has_tag=True), "16777215", b"\x00\xff\xff\xff"),
    (spec("integer64"), "18446744073709551615", b"\xff" * 8),
    (spec("integer64"), "5000000000", (5000000000).to_bytes(8, "big")),
    (spec("signed"), "-1", b"\xff\xff\xff\xff"),
    (spec("signed"), "2147483647", b"\x7f\xff\xff\xff"),
    (spec("short"), "65535", b"\xff\xff"),
    (spec("byte"), "255", b"\xff"),
    (spec("byte", values={"Low": 1}), "Low", b"\x01"),
    (spec("date"), "0", b"\x00\x00\x00\x00"),
    (spec("date"), "1704067200", (1704067200).to_bytes(4, "big")),
    (spec("date"), "2024-01-01T00:00:00Z", (1704067200).to_bytes(4, "big")),
    (spec("date"), "2024-01-01T02:00:00+02:00", (1704067200).to_bytes(4, "big")),
    (spec("date"), "2024-01-01T00:00:00", (1704067200).to_bytes(4, "big")),
    (spec("date"), "2024-01-01", (1704067200).to_bytes(4, "big")),
    (spec("ether"), "00:11:22:aa:bb:cc", bytes.fromhex("001122aabbcc")),
    (spec("ether"), "00-11-22-AA-BB-CC", bytes.fromhex("001122aabbcc")),
    (spec("combo-ip"), "192.0.2.1", b"\xc0\x00\x02\x01"),
    (spec("combo-ip"), "2001:db8::1", bytes.fromhex("20010db8000000000000000000000001")),
]


@pytest.mark.parametrize(("attr", "value", "expected"), GOOD)
def test_good_values_encode(attr: AttributeSpec, value: str, expected: bytes) -> None:
    assert check_value(attr, value) is None
    assert encode_value(attr, value) == expected


BAD = [
    (spec("string"), "", "cannot be sent empty"),
    (spec("string"), "x" * 254, "254 bytes, more than the 253"),
    (spec("string"), "é" * 127, "254 bytes"),
    (spec("string", has_tag=True), "x" * 253, "more than the 252"),
    (spec("string", encrypt=1), "p" * 129, "more than the 128"),
    (spec("string", has_tag=True, encrypt=2), "p" * 240, "more than the 239"),
    (spec("octets"), "0xzz", "not valid hex"),
    (spec("octets"), "0x123", "not valid hex"),
    (spec("octets"), "0x", "cannot be sent empty"),
    (spec("octets"), "", "cannot be sent empty"),
    (spec("ipaddr"), "192.0.2.256", "not an IPv4 address"),
    (spec("ipaddr"), "2001:db8::1", "not an IPv4 address"),
    (spec("ipaddr"), "", "not an IPv4 address"),
    (spec("ipv6addr"), "192.0.2.1", "not an IPv6 address"),
    (spec("ipv6addr"), "fe80::1%eth0", "not an IPv6 address"),
    (spec("ipv6prefix"), "2001:db8::/129", "not an IPv6 prefix"),
    (spec("ipv6prefix"), "2001:db8::/x", "not an IPv6 prefix"),
    (spec("ipv6prefix"), "10.0.0.0/8", "not an IPv6 prefix"),
    (spec("ipv6prefix"), "2001:db8::1/48", "bits set beyond /48"),
    (spec("ipv6prefix"), "2001:db8::/", "not an IPv6 prefix"),
    (spec("ifid"), "1:2:3", "not an interface id"),
    (spec("ifid"), "12345:0:0:0", "not an interface id"),
    (spec("integer"), "4294967296", "out of range 0..4294967295"),
    (spec("integer"), "-1", "out of range"),
    (spec("integer"), " 5", "not an integer"),
    (spec("integer"), "+5", "not an integer"),
    (spec("integer"), "0x10", "not an integer"),
    (spec("integer"), "1.5", "not an integer"),
    (spec("integer", values={"Framed-User": 2}), "Bogus", "neither a number nor a named value"),
    (spec("integer", has_tag=True), "16777216", "out of range 0..16777215"),
    (spec("integer64"), "18446744073709551616", "out of range"),
    (spec("signed"), "2147483648", "out of range"),
    (spec("short"), "65536", "out of range 0..65535"),
    (spec("byte"), "256", "out of range 0..255"),
    (spec("date"), "yesterday", "neither unix seconds nor an ISO 8601 datetime"),
    (spec("date"), "4294967296", "1970..2106"),
    (spec("date"), "1969-12-31T23:59:59Z", "1970..2106"),
    (spec("ether"), "00:11:22:aa:bb", "not a MAC address"),
    (spec("ether"), "00:11-22:aa:bb:cc", "not a MAC address"),
    (spec("combo-ip"), "example.net", "not an IPv4 or IPv6 address"),
    (spec("abinary"), "nonsense", "not an Ascend filter"),
    (spec("abinary"), " ", "not an Ascend filter"),
    (spec("tlv"), "anything", "cannot be written as text"),
]


@pytest.mark.parametrize(("attr", "value", "words"), BAD)
def test_bad_values_are_refused_with_a_reason(attr: AttributeSpec, value: str, words: str) -> None:
    reason = check_value(attr, value)
    assert reason is not None and words in reason
    assert "Test-Attr" in reason
    with pytest.raises(ValueError, match="Test-Attr") as caught:
        encode_value(attr, value)
    assert str(caught.value) == reason


def test_reason_quotes_the_value_and_attribute(catalog: AttributeCatalog) -> None:
    interval = catalog.get("Acct-Interim-Interval")
    assert interval is not None
    assert check_value(interval, "abc") == "'abc' is not an integer for Acct-Interim-Interval"


def test_shipped_named_values_encode(catalog: AttributeCatalog) -> None:
    service_type = catalog.get("Service-Type")
    tunnel_type = catalog.get("Tunnel-Type")
    assert service_type is not None and tunnel_type is not None
    assert encode_value(service_type, "Framed-User") == b"\x00\x00\x00\x02"
    # The tag of a tagged integer is the codec's business: the value keeps its 4 octets.
    assert encode_value(tunnel_type, "L2TP") == b"\x00\x00\x00\x03"


def test_ascend_filter_encodes() -> None:
    encoded = encode_value(spec("abinary"), "family=ipv4 action=accept direction=in")
    assert len(encoded) == 32 and encoded[:3] == b"\x01\x01\x01"


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        ("Tunnel-Type", ("Tunnel-Type", None)),
        ("Tunnel-Type:1", ("Tunnel-Type", 1)),
        ("ERX-Service-Activate:31", ("ERX-Service-Activate", 31)),
    ],
)
def test_split_tag_reads_the_layout_spelling(reference: str, expected: object) -> None:
    assert dictionary.split_tag(reference) == expected
    assert dictionary.tagged_name(*dictionary.split_tag(reference)) == reference


@pytest.mark.parametrize("reference", ["Tunnel-Type:0", "Tunnel-Type:32", "Tunnel-Type:-1", "X:a"])
def test_split_tag_refuses_tags_outside_1_to_31(reference: str) -> None:
    with pytest.raises(ValueError, match=r"1\.\.31"):
        dictionary.split_tag(reference)
