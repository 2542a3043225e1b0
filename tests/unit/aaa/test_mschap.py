"""MS-CHAPv2 primitives against the sample data of RFC 2759 §9 and RFC 3079 §3.5."""

from __future__ import annotations

import pytest
from Crypto.Hash import MD4

from radius_contracts.aaa import mschap


def h(text: str) -> bytes:
    return bytes.fromhex(text)


# RFC 2759 §9.2 "Hash Example" (also the initial values of RFC 3079 §3.5).
USER = b"User"
PASSWORD = "clientPass"
AUTHENTICATOR_CHALLENGE = h("5B 5D 7C 7D 7B 3F 2F 3E 3C 2C 60 21 32 26 26 28")
PEER_CHALLENGE = h("21 40 23 24 25 5E 26 2A 28 29 5F 2B 3A 33 7C 7E")
CHALLENGE = h("D0 2E 43 86 BC E9 12 26")
PASSWORD_HASH = h("44 EB BA 8D 53 12 B8 D6 11 47 44 11 F5 69 89 AE")
NT_RESPONSE = h("82 30 9E CD 8D 70 8B 5E A0 8F AA 39 81 CD 83 54 42 33 11 4A 3D 85 D6 DF")
PASSWORD_HASH_HASH = h("41 C0 0C 58 4B D2 D9 1C 40 17 A2 A1 2F A5 9F 3F")
AUTHENTICATOR_RESPONSE = "S=407A5589115FD0D6209F510FE9C04566932CDA56"

# RFC 3079 §3.5.3 "Sample 128-bit Key Derivation" (§3.5.1 prints the first 8 octets of the same
# start key as SendStartKey40). The RFC derives it with IsSend and IsServer both TRUE: it is
# the server's send key, which the NAS gets as MS-MPPE-Send-Key.
MASTER_KEY = h("FD EC E3 71 7A 8C 83 8C B3 88 E5 27 AE 3C DD 31")
SEND_START_KEY_128 = h("8B 7C DC 14 9B 99 3A 1B A1 18 CB 15 3F 56 DC CB")
SEND_START_KEY_40 = h("8B 7C DC 14 9B 99 3A 1B")
# The RFC prints no receive key. This is the Magic2 key for the same MasterKey, computed here
# and equal to the value an independent EAP-MSCHAPv2 implementation publishes for the vector.
RECV_START_KEY_128 = h("D5 F0 E9 52 1E 3E A9 58 96 45 E8 60 51 C8 22 26")


def test_rfc2759_hash_example() -> None:
    assert mschap.challenge_hash(PEER_CHALLENGE, AUTHENTICATOR_CHALLENGE, USER) == CHALLENGE
    assert mschap.nt_password_hash(PASSWORD) == PASSWORD_HASH
    assert mschap.challenge_response(CHALLENGE, PASSWORD_HASH) == NT_RESPONSE
    assert mschap.hash_nt_password_hash(PASSWORD_HASH) == PASSWORD_HASH_HASH
    nt_response = mschap.generate_nt_response(
        AUTHENTICATOR_CHALLENGE, PEER_CHALLENGE, USER, PASSWORD
    )
    assert nt_response == NT_RESPONSE


@pytest.mark.parametrize("password", [PASSWORD, PASSWORD_HASH], ids=["password", "hash"])
def test_rfc2759_authenticator_response(password: str | bytes) -> None:
    response = mschap.generate_authenticator_response(
        password, NT_RESPONSE, PEER_CHALLENGE, AUTHENTICATOR_CHALLENGE, USER
    )
    assert response == AUTHENTICATOR_RESPONSE
    assert mschap.authenticator_response(PASSWORD_HASH_HASH, NT_RESPONSE, CHALLENGE) == response


def test_rfc2759_des_key_generation() -> None:
    # §9.3: password "MyPw", its hash, and the two parity-corrected DES keys.
    password_hash = mschap.nt_password_hash("MyPw")
    assert password_hash == h("FC 15 6A F7 ED CD 6C 0E DD E3 33 7D 42 7F 4E AC")
    assert mschap.des_key(password_hash[:7]) == h("FD 0B 5B 5E 7F 6E 34 D9")
    assert mschap.des_key(password_hash[7:14]) == h("0E 6E 79 67 37 EA 08 FE")


def test_des_key_has_odd_parity_and_keeps_56_bits() -> None:
    key7 = bytes(range(0x11, 0x88, 0x11))
    key = mschap.des_key(key7)
    assert len(key) == 8
    assert all(bin(octet).count("1") % 2 == 1 for octet in key)
    kept = "".join(f"{octet >> 1:07b}" for octet in key)
    assert int(kept, 2).to_bytes(7, "big") == key7


def test_nt_password_hash_is_md4_of_utf16le() -> None:
    # Well-known NT hashes of "" and "password".
    assert mschap.nt_password_hash("") == h("31D6CFE0D16AE931B73C59D7E0C089C0")
    assert mschap.nt_password_hash("password") == h("8846F7EAEE8FB117AD06BDD830B7586C")
    # é is U+00E9, € U+20AC, and 😀 (U+1F600) the surrogate pair D83D DE00, little-endian.
    utf16le = h("E9 00 AC 20 3D D8 00 DE")
    assert mschap.nt_password_hash("é€😀") == MD4.new(utf16le).digest()


def test_challenge_hash_drops_a_prepended_windows_domain() -> None:
    # RFC 2759 §8.2: only the user name "excluding any prepended domain name" is hashed.
    for name in (b"EXAMPLE\\User", b"\\User"):
        assert mschap.challenge_hash(PEER_CHALLENGE, AUTHENTICATOR_CHALLENGE, name) == CHALLENGE
    other = mschap.challenge_hash(PEER_CHALLENGE, AUTHENTICATOR_CHALLENGE, b"User@example")
    assert other != CHALLENGE


def test_rfc3079_sample_key_derivation() -> None:
    assert mschap.master_key(PASSWORD_HASH_HASH, NT_RESPONSE) == MASTER_KEY
    server_send = mschap.asymmetric_start_key(MASTER_KEY, 16, is_send=True, is_server=True)
    assert server_send == SEND_START_KEY_128
    server_send_40 = mschap.asymmetric_start_key(MASTER_KEY, 8, is_send=True, is_server=True)
    assert server_send_40 == SEND_START_KEY_40
    server_recv = mschap.asymmetric_start_key(MASTER_KEY, 16, is_send=False, is_server=True)
    assert server_recv == RECV_START_KEY_128


def test_start_keys_pair_up_across_the_link() -> None:
    # What one end sends with, the other receives with.
    client_send = mschap.asymmetric_start_key(MASTER_KEY, 16, is_send=True, is_server=False)
    client_recv = mschap.asymmetric_start_key(MASTER_KEY, 16, is_send=False, is_server=False)
    assert client_send == RECV_START_KEY_128
    assert client_recv == SEND_START_KEY_128
    assert client_send != client_recv


def test_mppe_keys_128_are_from_the_servers_point_of_view() -> None:
    send_key, recv_key = mschap.mppe_keys_128(PASSWORD_HASH, NT_RESPONSE)
    assert send_key == SEND_START_KEY_128  # MS-MPPE-Send-Key: NAS -> peer
    assert recv_key == RECV_START_KEY_128  # MS-MPPE-Recv-Key: peer -> NAS


def test_prepared_password_matches_the_plain_functions() -> None:
    prepared = mschap.prepare_password(PASSWORD)
    assert mschap.prepare_password(PASSWORD) is prepared  # cached
    assert prepared.password_hash == PASSWORD_HASH
    assert prepared.password_hash_hash == PASSWORD_HASH_HASH
    assert prepared.challenge_response(CHALLENGE) == NT_RESPONSE
    assert prepared.authenticator_response(NT_RESPONSE, CHALLENGE) == AUTHENTICATOR_RESPONSE
    assert prepared.mppe_keys_128(NT_RESPONSE) == (SEND_START_KEY_128, RECV_START_KEY_128)
    assert PASSWORD_HASH.hex() not in repr(prepared).lower()


def test_bad_sizes_are_refused() -> None:
    with pytest.raises(ValueError, match="8-octet"):
        mschap.challenge_response(CHALLENGE + b"\x00", PASSWORD_HASH)
    with pytest.raises(ValueError, match="16-octet"):
        mschap.challenge_response(CHALLENGE, PASSWORD_HASH[:15])
    with pytest.raises(ValueError, match="start keys"):
        mschap.asymmetric_start_key(MASTER_KEY, 20, is_send=True, is_server=True)
