"""Manufacturers and layouts a new database starts with, so a first NAS works out of the box.

They are created once, when ``migrate`` creates the database, through the ordinary services:
audited as the system actor and linted like any layout an operator saves. Afterwards they are
the operator's to change or delete; nothing puts them back.

Conventions the templates follow (see each layout's description): *upload* is what the NAS
receives from the subscriber (its input/ingress/rx), *download* what it sends to them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from radius_contracts.domain import LayoutPurpose
from radius_contracts.errors import RadiusContractsError
from radius_contracts.services.base import SYSTEM
from radius_contracts.services.registry import Services

__all__ = ["DEFAULT_MANUFACTURERS", "DefaultLayout", "DefaultManufacturer", "seed_defaults"]

log = logging.getLogger("radius_contracts.services.defaults")


@dataclass(frozen=True, slots=True)
class DefaultLayout:
    name: str
    purpose: LayoutPurpose
    description: str
    rows: tuple[tuple[str, str], ...]  # (attribute, template)


@dataclass(frozen=True, slots=True)
class DefaultCoa:
    """The manufacturer's CoA policy (see domain.CoaPolicy)."""

    identifiers: tuple[str, ...]
    attributes: tuple[str, ...]
    deactivate: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class DefaultManufacturer:
    name: str
    dictionary_vendor: str  # as VENDOR in dictionaries/: fills in the IANA vendor id
    description: str
    layouts: tuple[DefaultLayout, ...]
    coa: DefaultCoa


_IPV4_POOL = ("Framed-Pool", "{pool_name_ipv4}")

MIKROTIK = DefaultManufacturer(
    "MikroTik",
    "Mikrotik",
    "MikroTik RouterOS (PPPoE, hotspot, DHCP with RADIUS).",
    (
        DefaultLayout(
            "mikrotik-active",
            LayoutPurpose.ACTIVE,
            "Mikrotik-Rate-Limit is 'rx/tx burst-rate burst-threshold burst-time priority "
            "limit-at', seen from the router: rx is what it receives from the subscriber "
            "(upload), tx what it sends (download). No burst (0/0), lowest priority 8, and the "
            "minimum speeds as limit-at (0 = no guarantee when the contract has none). Speeds "
            "go as entered (k/M suffixes, as RouterOS writes them). Framed-Pool names the "
            "router's IPv4 pool; Mikrotik-Delegated-IPv6-Pool the router's IPv6 pool that "
            "DHCPv6-PD delegates the subscriber's prefix from.",
            (
                (
                    "Mikrotik-Rate-Limit",
                    "{max_upload}/{max_download} 0/0 0/0 0/0 8 {min_upload|0}/{min_download|0}",
                ),
                _IPV4_POOL,
                # RouterOS PPP hands IPv6 out by DHCPv6 prefix delegation from a named pool;
                # MikroTik's RADIUS client takes that pool from this VSA (Framed-IPv6-Pool is
                # not in its list of supported attributes).
                ("Mikrotik-Delegated-IPv6-Pool", "{pool_name_ipv6}"),
            ),
        ),
        DefaultLayout(
            "mikrotik-suspended",
            LayoutPurpose.SUSPENDED,
            "Suspended contracts stay connected at 256k/256k and join the firewall address "
            "list 'suspended', which the ISP's firewall redirects to a payment page "
            "(e.g. a dst-nat of that list's HTTP traffic to the portal).",
            (
                ("Mikrotik-Rate-Limit", "256k/256k"),
                ("Mikrotik-Address-List", "suspended"),
                _IPV4_POOL,
            ),
        ),
    ),
    # RouterOS matches CoA on User-Name/Acct-Session-Id and changes the rate limit and
    # session timeout live; an address list or pool change takes a reconnect (Disconnect).
    DefaultCoa(
        ("User-Name", "Acct-Session-Id", "NAS-IP-Address"),
        ("Mikrotik-Rate-Limit", "Session-Timeout"),
    ),
)

ACCEL_PPP = DefaultManufacturer(
    "accel-ppp",
    "Accel-PPP",
    "accel-ppp, the Linux PPPoE/IPoE/L2TP BRAS.",
    (
        DefaultLayout(
            "accel-ppp-active",
            LayoutPurpose.ACTIVE,
            "accel-ppp's shaper reads Filter-Id (its default attr=Filter-Id) as "
            "'download/upload' in kbit/s (multiplier=1). Framed-Pool names an [ip-pool] pool; "
            "Delegated-IPv6-Prefix-Pool (RFC 6911) an [ipv6-pool] delegate pool, the "
            "attribute accel-ppp's ipv6 pool reads for prefix delegation by default.",
            (
                ("Filter-Id", "{max_download_kbps}/{max_upload_kbps}"),
                _IPV4_POOL,
                ("Delegated-IPv6-Prefix-Pool", "{pool_name_ipv6}"),
            ),
        ),
    ),
    # accel-ppp's shaper takes a new Filter-Id rate by CoA.
    DefaultCoa(("User-Name", "Acct-Session-Id"), ("Filter-Id", "Session-Timeout")),
)

CISCO = DefaultManufacturer(
    "Cisco",
    "Cisco",
    "Cisco IOS XE broadband (ISG) routers.",
    (
        DefaultLayout(
            "cisco-active",
            LayoutPurpose.ACTIVE,
            "ISG RADIUS-based policing: Cisco-AVPair qos-policy-in/-out=add-class(sub,"
            "(class-default),police(bit/s)) adds a policer to the session's active QoS policy "
            "(in = from the subscriber, upload; out = download). A QoS policy must already be "
            "attached to the session (e.g. by the virtual template), or ISG ignores it. "
            "Framed-Pool names a local address pool.",
            (
                (
                    "Cisco-AVPair",
                    "qos-policy-in=add-class(sub,(class-default),police({max_upload_bps}))",
                ),
                (
                    "Cisco-AVPair",
                    "qos-policy-out=add-class(sub,(class-default),police({max_download_bps}))",
                ),
                _IPV4_POOL,
            ),
        ),
    ),
    # ISG identifies a session by its Acct-Session-Id alone.
    DefaultCoa(("Acct-Session-Id",), ("Cisco-AVPair",)),
)

HUAWEI = DefaultManufacturer(
    "Huawei",
    "Huawei",
    "Huawei NE40E / ME60 / NetEngine BRAS.",
    (
        DefaultLayout(
            "huawei-active",
            LayoutPurpose.ACTIVE,
            "Huawei-Input-Average-Rate is the committed rate from the subscriber (upload), "
            "Huawei-Output-Average-Rate towards them (download), both in bit/s. The peak "
            "rates are left out: older Huawei-3Com firmware numbers those attributes "
            "differently. Framed-Pool names the BRAS's address pool.",
            (
                ("Huawei-Input-Average-Rate", "{max_upload_bps}"),
                ("Huawei-Output-Average-Rate", "{max_download_bps}"),
                _IPV4_POOL,
            ),
        ),
    ),
    DefaultCoa(
        ("User-Name", "Acct-Session-Id"),
        ("Huawei-Input-Average-Rate", "Huawei-Output-Average-Rate", "Session-Timeout"),
    ),
)

JUNIPER_ERX = DefaultManufacturer(
    "Juniper ERX",
    "ERX",
    "Juniper E-series (JunosE) and MX (Junos subscriber management) BNGs.",
    (
        DefaultLayout(
            "juniper-erx-active",
            LayoutPurpose.ACTIVE,
            "ERX-Service-Activate (a tagged VSA) activates the router's service 'internet' "
            "with its parameters in the order the service definition declares them, here "
            "internet(input bit/s, output bit/s) like Juniper's tiered(inputBW, outputBW) "
            "example: input is from the subscriber (upload). Define that service on the "
            "router, or change the name and order here. ERX-Address-Pool-Name and "
            "ERX-Ipv6-Delegated-Pool-Name name the router's IPv4 and DHCPv6-PD pools.",
            (
                ("ERX-Service-Activate", "internet({max_upload_bps},{max_download_bps})"),
                ("ERX-Address-Pool-Name", "{pool_name_ipv4}"),
                ("ERX-Ipv6-Delegated-Pool-Name", "{pool_name_ipv6}"),
            ),
        ),
    ),
    # A changed service is switched off by name (Service-Deactivate) before the new one is
    # activated, in one CoA-Request.
    DefaultCoa(
        ("Acct-Session-Id",),
        ("ERX-Service-Activate",),
        (("ERX-Service-Activate", "ERX-Service-Deactivate"),),
    ),
)

WISPR = DefaultManufacturer(
    "WISPr",
    "WISPr",
    "Hotspot gateways that follow the Wi-Fi Alliance WISPr attributes.",
    (
        DefaultLayout(
            "wispr-active",
            LayoutPurpose.ACTIVE,
            "WISPr-Bandwidth-Max-Up/-Down in bit/s: up is from the subscriber.",
            (
                ("WISPr-Bandwidth-Max-Up", "{max_upload_bps}"),
                ("WISPr-Bandwidth-Max-Down", "{max_download_bps}"),
            ),
        ),
    ),
    DefaultCoa(
        ("User-Name", "Acct-Session-Id"),
        ("WISPr-Bandwidth-Max-Up", "WISPr-Bandwidth-Max-Down", "Session-Timeout"),
    ),
)

DEFAULT_MANUFACTURERS: tuple[DefaultManufacturer, ...] = (
    MIKROTIK,
    ACCEL_PPP,
    CISCO,
    HUAWEI,
    JUNIPER_ERX,
    WISPR,
)


async def seed_defaults(services: Services) -> None:
    """Create DEFAULT_MANUFACTURERS and their layouts through the services (audited, linted).

    Called for a new database only. One that does not fit (e.g. its vendor is missing from a
    customised dictionary set) is logged and skipped rather than stopping the daemon.
    """
    manufacturers = layouts = 0
    for default in DEFAULT_MANUFACTURERS:
        try:
            manufacturer = await services.manufacturers.create(
                SYSTEM,
                {
                    "name": default.name,
                    "dictionary_vendor": default.dictionary_vendor,
                    "description": default.description,
                    "coa_identifiers": list(default.coa.identifiers),
                    "coa_attributes": list(default.coa.attributes),
                    "coa_deactivate": dict(default.coa.deactivate),
                },
            )
        except RadiusContractsError as exc:
            log.warning("default manufacturer %s not created: %s", default.name, exc.detail)
            continue
        manufacturers += 1
        for layout in default.layouts:
            try:
                await services.layouts.create(
                    SYSTEM,
                    {
                        "name": layout.name,
                        "manufacturer_id": manufacturer.id,
                        "purpose": layout.purpose,
                        "description": layout.description,
                        "attributes": [
                            {"attribute": attribute, "template": template}
                            for attribute, template in layout.rows
                        ],
                    },
                )
            except RadiusContractsError as exc:
                log.warning("default layout %s not created: %s", layout.name, exc.detail)
                continue
            layouts += 1
    log.info(
        "new database: created %d default manufacturers and %d layouts", manufacturers, layouts
    )
