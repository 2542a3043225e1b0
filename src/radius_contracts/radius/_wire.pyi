Buffer = bytes | bytearray | memoryview

def md5(data: Buffer, /) -> bytes: ...
def hmac_md5(key: Buffer, /, *parts: Buffer) -> bytes: ...
def decrypt_password(value: Buffer, secret: Buffer, authenticator: Buffer, /) -> bytes | None: ...
def salt_encrypt(plain: bytes, secret: bytes, authenticator: bytes, salt: bytes, /) -> bytes: ...
def parse_access(
    data: bytes, secret: bytes, /
) -> (
    tuple[
        int,
        bytes,
        int,
        str | None,
        bytes | None,
        bytes | None,
        bytes | None,
        str | None,
        str | None,
        int | None,
        str | None,
        bool,
        tuple[bytes, ...],
        int,
        bytes | None,
        bytes | None,
    ]
    | None
): ...
def parse_accounting(
    data: bytes, secret: bytes, /
) -> (
    tuple[
        int,
        bytes,
        int,
        str | None,
        str | None,
        int,
        int | None,
        int | None,
        int | None,
        int | None,
        int | None,
        int | None,
        str | None,
        bytes | None,
        str | None,
        bytes | None,
        str | None,
        str | None,
        int | None,
        str | None,
        str | None,
        str | None,
        int | None,
        tuple[bytes, ...],
    ]
    | None
): ...
def reply(
    code: int,
    identifier: int,
    request_authenticator: bytes,
    attributes: bytes,
    secret: bytes,
    proxy_states: tuple[bytes, ...],
    message_authenticator: bool = True,
    /,
) -> bytes: ...
