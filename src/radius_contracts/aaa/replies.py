"""Replies: a contract's layout rendered for one NAS, encoded once and kept.

A layout's templates are filled in with the contract's values, the attributes its config
implies are added (addresses, the plan's timeouts, Acct-Interim-Interval), and the result is
encoded as the reply's attributes, with its size counted for the packet limit (aaa.handler).
Replies are cached per contract, NAS and purpose and rebuilt when the contract's snapshot, the
catalogue (NAS, layouts, pools) or the dictionaries change.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from radius_contracts.aaa.render import render_rows, template_values
from radius_contracts.domain import (
    ContractSnapshot,
    LayoutPurpose,
    LayoutSnapshot,
    NasSnapshot,
    PoolMode,
)
from radius_contracts.index import AuthIndex
from radius_contracts.radius import codec
from radius_contracts.radius.dictionary import (
    AttributeCatalog,
    encode_value,
    split_tag,
    tagged_name,
)
from radius_contracts.radius.messages import AuthDecision, AuthMethod, HiddenAttribute

log = logging.getLogger("radius_contracts.aaa")

__all__ = ["RenderedAttribute", "Replies", "Reply"]

# What the contract's config implies, unless the layout already sends that attribute.
_IMPLIED = (
    ("ipv4", "Framed-IP-Address"),
    ("ipv6", "Framed-IPv6-Prefix"),
    ("delegated_ipv6_prefix", "Delegated-IPv6-Prefix"),
)
_POOL_VARIABLES = ("pool_name_ipv4", "pool_name_ipv6")
_REPLY_CACHE_LIMIT = 500_000


@dataclass(frozen=True, slots=True)
class RenderedAttribute:
    """One reply attribute as text, for previews."""

    name: str
    value: str


@dataclass(frozen=True, slots=True)
class Reply:
    """The reply a contract gets from one NAS for one purpose, rendered and encoded."""

    layout: str | None
    rendered: tuple[RenderedAttribute, ...]
    attributes: bytes
    hidden: tuple[HiddenAttribute, ...]
    # Octets of an Access-Accept with just these attributes: header, Message-Authenticator,
    # attributes and hidden ones as the codec will encrypt them.
    size: int
    # The finished decisions by method, built on first use: most requests then allocate
    # nothing here.
    decisions: dict[AuthMethod | None, AuthDecision] = field(default_factory=dict)


class Replies:
    """Rendered replies by contract, NAS and purpose (see the module)."""

    def __init__(
        self, index: AuthIndex, catalog: Callable[[], AttributeCatalog], interim_interval: int
    ) -> None:
        self.index = index
        self._catalog = catalog
        # Acct-Interim-Interval for NAS without their own (RFC 2869 §5.16); 0: none sent.
        self.interim_interval = interim_interval
        # (contract id, NAS id, purpose) → (snapshot, catalogue version, catalog, Reply)
        self._replies: dict[
            tuple[int, int, LayoutPurpose],
            tuple[ContractSnapshot, int, AttributeCatalog, Reply],
        ] = {}

    def configure(self, interim_interval: int) -> None:
        """New settings from a reload: replies rendered with the old ones are dropped."""
        self.interim_interval = interim_interval
        self._replies.clear()

    def get(
        self,
        contract: ContractSnapshot,
        nas: NasSnapshot,
        purpose: LayoutPurpose,
        layout: LayoutSnapshot | None,
    ) -> Reply:
        """The reply ``contract`` gets from ``nas`` for ``purpose`` with ``layout``: cached
        until the contract's snapshot, the catalogue version or the dictionaries change."""
        key = (contract.id, nas.id, purpose)
        catalog = self._catalog()
        version = self.index.catalogue_version
        cached = self._replies.get(key)
        if (
            cached is not None
            and cached[0] is contract
            and cached[1] == version
            and cached[2] is catalog
        ):
            return cached[3]
        reply = self.render(contract, nas, layout, catalog)
        if len(self._replies) >= _REPLY_CACHE_LIMIT:
            self._replies.clear()  # crude, but bounded: refilled by the next requests
        self._replies[key] = (contract, version, catalog, reply)
        return reply

    def render(
        self,
        contract: ContractSnapshot,
        nas: NasSnapshot,
        layout: LayoutSnapshot | None,
        catalog: AttributeCatalog | None = None,
    ) -> Reply:
        """Render ``layout`` for ``contract`` at ``nas`` plus the attributes its config implies."""
        catalog = catalog or self._catalog()
        values = template_values(
            contract,
            nas_name=nas.name,
            nas_address=nas.address,
            pop_name=nas.pop_name,
            manufacturer_name=nas.manufacturer_name,
        )
        for variable in _POOL_VARIABLES:
            pool_name = values.get(variable)
            if pool_name is not None:
                pool = self.index.pool(pool_name)
                # An inactive pool is never handed to a NAS; a managed one neither: the
                # address leased from it goes in the reply instead.
                if pool is None or not pool.active or pool.mode is PoolMode.MANAGED:
                    del values[variable]
        rows = render_rows(layout.rows, values) if layout is not None else []
        sent = {name.casefold() for name, _ in rows}
        for variable, attribute in _IMPLIED:
            if variable in values and attribute.casefold() not in sent:
                rows.append((attribute, values[variable]))
        plan = contract.plan
        if plan is not None:
            # RFC 2865 §5.27/§5.28: the plan's session and idle limits, unless the layout
            # sends its own.
            for name, seconds in (
                ("Session-Timeout", plan.session_timeout),
                ("Idle-Timeout", plan.idle_timeout),
            ):
                if seconds is not None and name.casefold() not in sent:
                    rows.append((name, str(seconds)))
        interim = nas.interim_interval
        if interim is None:
            interim = self.interim_interval
        if interim > 0 and "acct-interim-interval" not in sent:
            # RFC 2869 §5.16: how often the NAS sends Interim-Updates for this session.
            rows.append(("Acct-Interim-Interval", str(interim)))
        rendered: list[RenderedAttribute] = []
        encoded: list[bytes] = []
        hidden: list[HiddenAttribute] = []
        for name, text in rows:
            try:
                base, tag = split_tag(name)  # "Tunnel-Type:1" (RFC 2868), linted when saved
            except ValueError:
                base, tag = name, None
            spec = catalog.get(base)
            if spec is None or (tag is not None and not spec.has_tag):
                log.warning(
                    "layout %s: attribute %s is not in the dictionaries",
                    layout.name if layout is not None else None, name,
                )  # fmt: skip
                continue
            try:
                value = encode_value(spec, text)
                if spec.encrypt:
                    hidden.append(codec.hidden_attribute(spec, value, tag))
                else:
                    encoded.append(codec.encode_attribute(spec, value, tag))
            except ValueError as exc:
                # The layout linted fine for the sample contract, but this contract's value
                # does not fit the attribute: leave the row out rather than refuse service.
                log.warning(
                    "contract %s: %s left out of the reply for NAS %s: %s",
                    contract.number, spec.name, nas.name, exc,
                )  # fmt: skip
                continue
            rendered.append(RenderedAttribute(tagged_name(spec.name, tag), text))
        attributes = b"".join(encoded)
        size = codec.REPLY_OVERHEAD + len(attributes) + sum(map(codec.hidden_size, hidden))
        return Reply(
            layout.name if layout is not None else None,
            tuple(rendered),
            attributes,
            tuple(hidden),
            size,
        )
