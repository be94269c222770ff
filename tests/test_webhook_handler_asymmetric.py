"""Ed25519 (Discord) and ECDSA P-256 (SendGrid) verification in pure Python."""

from __future__ import annotations

import base64
import hashlib
import importlib
import json
import types
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from interlock import webhook_handler as wh
from interlock.webhook_handler import (
    _cryptography_backend,
    _ecdsa_p256_verify,
    _ecdsa_p256_verify_pure,
    _ed25519_verify,
    _ed25519_verify_pure,
    _load_p256_public_key,
)


def _vectors_dir() -> Path:
    here = Path(__file__).resolve()
    candidates = (here.parents[2] / "shared" / "vectors", here.parents[1] / "shared" / "vectors")
    return next((path for path in candidates if path.is_dir()), candidates[0])


VECTORS = _vectors_dir() / "webhooks"
DISCORD = json.loads((VECTORS / "discord.json").read_text(encoding="utf-8"))["vectors"]
SENDGRID = json.loads((VECTORS / "sendgrid.json").read_text(encoding="utf-8"))["vectors"]


# --- Independent reference arithmetic (affine, naive, slow): an oracle for the fast code -------

ED_P = 2**255 - 19
ED_D = -121665 * pow(121666, -1, ED_P) % ED_P
ED_L = 2**252 + 27742317777372353535851937790883648493
ED_B = (
    15112221349535400772501151409588531511454012693041857206046113283949847762202,
    46316835694926478169428394003475163141307993866256225615783033603165251855960,
)


def ed_add(p1: tuple[int, int], p2: tuple[int, int]) -> tuple[int, int]:
    """Affine twisted Edwards addition (a = -1)."""
    (x1, y1), (x2, y2) = p1, p2
    t = ED_D * x1 * x2 * y1 * y2 % ED_P
    x3 = (x1 * y2 + x2 * y1) * pow(1 + t, -1, ED_P) % ED_P
    y3 = (y1 * y2 + x1 * x2) * pow(1 - t, -1, ED_P) % ED_P
    return x3, y3


def ed_mul(k: int, point: tuple[int, int]) -> tuple[int, int]:
    """[k]P by double-and-add."""
    result = (0, 1)
    while k:
        if k & 1:
            result = ed_add(result, point)
        point = ed_add(point, point)
        k >>= 1
    return result


def ed_encode(point: tuple[int, int]) -> bytes:
    """RFC 8032 5.1.2 point encoding."""
    x, y = point
    return (y | (x & 1) << 255).to_bytes(32, "little")


def ed_sign(seed: bytes, message: bytes) -> tuple[bytes, bytes]:
    """RFC 8032 5.1.5/5.1.6: (public key, signature) for a 32-byte seed."""
    digest = hashlib.sha512(seed).digest()
    scalar = int.from_bytes(digest[:32], "little")
    scalar &= (1 << 254) - 8
    scalar |= 1 << 254
    public = ed_encode(ed_mul(scalar, ED_B))
    nonce = int.from_bytes(hashlib.sha512(digest[32:] + message).digest(), "little") % ED_L
    r_enc = ed_encode(ed_mul(nonce, ED_B))
    k = int.from_bytes(hashlib.sha512(r_enc + public + message).digest(), "little") % ED_L
    s = (nonce + k * scalar) % ED_L
    return public, r_enc + s.to_bytes(32, "little")


P256_P = 2**256 - 2**224 + 2**192 + 2**96 - 1
P256_B = 0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B
P256_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
P256_G = (
    0x6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296,
    0x4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5,
)


def p256_add(p1: tuple[int, int] | None, p2: tuple[int, int] | None) -> tuple[int, int] | None:
    """Affine short Weierstrass addition (None is the point at infinity)."""
    if p1 is None:
        return p2
    if p2 is None:
        return p1
    (x1, y1), (x2, y2) = p1, p2
    if x1 == x2 and (y1 + y2) % P256_P == 0:
        return None
    if p1 == p2:
        slope = (3 * x1 * x1 - 3) * pow(2 * y1, -1, P256_P) % P256_P
    else:
        slope = (y2 - y1) * pow(x2 - x1, -1, P256_P) % P256_P
    x3 = (slope * slope - x1 - x2) % P256_P
    return x3, (slope * (x1 - x3) - y1) % P256_P


def p256_mul(k: int, point: tuple[int, int] | None) -> tuple[int, int] | None:
    """[k]P by double-and-add."""
    result = None
    while k:
        if k & 1:
            result = p256_add(result, point)
        point = p256_add(point, point)
        k >>= 1
    return result


def p256_oracle_verify(q: tuple[int, int], message: bytes, r: int, s: int) -> bool:
    """Textbook ECDSA verification (FIPS 186-5 6.4.2) with the naive arithmetic."""
    e = int.from_bytes(hashlib.sha256(message).digest(), "big")
    w = pow(s, -1, P256_N)
    point = p256_add(p256_mul(e * w % P256_N, P256_G), p256_mul(r * w % P256_N, q))
    return point is not None and point[0] % P256_N == r


def p256_sign(d: int, k: int, message: bytes) -> tuple[int, int]:
    """Textbook ECDSA signing with a caller-chosen nonce (tests only)."""
    e = int.from_bytes(hashlib.sha256(message).digest(), "big")
    point = p256_mul(k, P256_G)
    assert point is not None
    r = point[0] % P256_N
    return r, pow(k, -1, P256_N) * (e + r * d) % P256_N


def der_int(value: int) -> bytes:
    """Minimal DER INTEGER for a non-negative value."""
    body = value.to_bytes(value.bit_length() // 8 + 1, "big")
    return b"\x02" + bytes([len(body)]) + body


def der_sig(r: int, s: int) -> bytes:
    """DER ECDSA-Sig-Value."""
    body = der_int(r) + der_int(s)
    return b"\x30" + bytes([len(body)]) + body


def sec1(point: tuple[int, int], *, compressed: bool = False) -> bytes:
    """SEC 1 v2 2.3.3 encoding."""
    x, y = point
    if compressed:
        return bytes([2 | (y & 1)]) + x.to_bytes(32, "big")
    return b"\x04" + x.to_bytes(32, "big") + y.to_bytes(32, "big")


SPKI_PREFIX = bytes.fromhex("3059301306072a8648ce3d020106082a8648ce3d030107034200")


def spki(point: tuple[int, int]) -> bytes:
    """DER SubjectPublicKeyInfo for an uncompressed P-256 point."""
    return SPKI_PREFIX + sec1(point)


# --- Ed25519 -----------------------------------------------------------------------------------

# RFC 8032 section 7.1 (public key, message, signature).
RFC8032_MESSAGE_1024 = bytes.fromhex(
    "08b8b2b733424243760fe426a4b54908632110a66c2f6591eabd3345e3e4eb98fa6e264bf09efe12ee50f8f54e9f"
    "77b1e355f6c50544e23fb1433ddf73be84d879de7c0046dc4996d9e773f4bc9efe5738829adb26c81b37c93a1b27"
    "0b20329d658675fc6ea534e0810a4432826bf58c941efb65d57a338bbd2e26640f89ffbc1a858efcb8550ee3a5e1"
    "998bd177e93a7363c344fe6b199ee5d02e82d522c4feba15452f80288a821a579116ec6dad2b3b310da903401aa6"
    "2100ab5d1a36553e06203b33890cc9b832f79ef80560ccb9a39ce767967ed628c6ad573cb116dbefefd75499da96"
    "bd68a8a97b928a8bbc103b6621fcde2beca1231d206be6cd9ec7aff6f6c94fcd7204ed3455c68c83f4a41da4af2b"
    "74ef5c53f1d8ac70bdcb7ed185ce81bd84359d44254d95629e9855a94a7c1958d1f8ada5d0532ed8a5aa3fb2d17b"
    "a70eb6248e594e1a2297acbbb39d502f1a8c6eb6f1ce22b3de1a1f40cc24554119a831a9aad6079cad88425de6bd"
    "e1a9187ebb6092cf67bf2b13fd65f27088d78b7e883c8759d2c4f5c65adb7553878ad575f9fad878e80a0c9ba63b"
    "cbcc2732e69485bbc9c90bfbd62481d9089beccf80cfe2df16a2cf65bd92dd597b0707e0917af48bbb75fed413d2"
    "38f5555a7a569d80c3414a8d0859dc65a46128bab27af87a71314f318c782b23ebfe808b82b0ce26401d2e22f04d"
    "83d1255dc51addd3b75a2b1ae0784504df543af8969be3ea7082ff7fc9888c144da2af58429ec96031dbcad3dad9"
    "af0dcbaaaf268cb8fcffead94f3c7ca495e056a9b47acdb751fb73e666c6c655ade8297297d07ad1ba5e43f1bca3"
    "2301651339e22904cc8c42f58c30c04aafdb038dda0847dd988dcda6f3bfd15c4b4c4525004aa06eeff8ca61783a"
    "acec57fb3d1f92b0fe2fd1a85f6724517b65e614ad6808d6f6ee34dff7310fdc82aebfd904b01e1dc54b2927094b"
    "2db68d6f903b68401adebf5a7e08d78ff4ef5d63653a65040cf9bfd4aca7984a74d37145986780fc0b16ac451649"
    "de6188a7dbdf191f64b5fc5e2ab47b57f7f7276cd419c17a3ca8e1b939ae49e488acba6b965610b5480109c8b17b"
    "80e1b7b750dfc7598d5d5011fd2dcc5600a32ef5b52a1ecc820e308aa342721aac0943bf6686b64b2579376504cc"
    "c493d97e6aed3fb0f9cd71a43dd497f01f17c0e2cb3797aa2a2f256656168e6c496afc5fb93246f6b1116398a346"
    "f1a641f3b041e989f7914f90cc2c7fff357876e506b50d334ba77c225bc307ba537152f3f1610e4eafe595f6d9d9"
    "0d11faa933a15ef1369546868a7f3a45a96768d40fd9d03412c091c6315cf4fde7cb68606937380db2eaaa707b4c"
    "4185c32eddcdd306705e4dc1ffc872eeee475a64dfac86aba41c0618983f8741c5ef68d3a101e8a3b8cac60c905c"
    "15fc910840b94c00a0b9d0"
)
RFC8032 = {
    "TEST 1": (
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        b"",
        (
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9"
            "b46bd25bf5f0595bbe24655141438e7a100b"
        ),
    ),
    "TEST 2": (
        "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
        bytes.fromhex("72"),
        (
            "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f1"
            "1d8c387b2eaeb4302aeeb00d291612bb0c00"
        ),
    ),
    "TEST 3": (
        "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
        bytes.fromhex("af82"),
        (
            "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984d"
            "c6594a7c15e9716ed28dc027beceea1ec40a"
        ),
    ),
    "TEST 1024": (
        "278117fc144c72340f67d0f2316e8386ceffbf2b2428c9c51fef7c597f1d426e",
        RFC8032_MESSAGE_1024,
        (
            "0aab4c900501b3e24d7cdf4663326a3a87df5e4843b2cbdb67cbf6e460fec350aa5371b1508f9f4528ecea23c436"
            "d94b5e8fcd4f681e30a6ac00a9704a188a03"
        ),
    ),
    "TEST SHA(abc)": (
        "ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf",
        hashlib.sha512(b"abc").digest(),
        (
            "dc2a4459e7369633a52b1bf277839a00201009a3efbf3ecb69bea2186c26b58909351fc9ac90b3ecfdfbc7c66431"
            "e0303dca179c138ac17ad9bef1177331a704"
        ),
    ),
}
RFC8032_VALUES = [
    (bytes.fromhex(key), message, bytes.fromhex(sig)) for key, message, sig in RFC8032.values()
]
RFC8032_CASES = [
    pytest.param(*values, id=name) for name, values in zip(RFC8032, RFC8032_VALUES, strict=True)
]


def _discord_case(vector: dict[str, Any]) -> tuple[bytes, bytes, bytes]:
    key = bytes.fromhex(vector["public_key_hex"])
    if "headers" in vector:
        headers = vector["headers"]
        message = (headers["X-Signature-Timestamp"] + vector["body_utf8"]).encode()
        return key, message, bytes.fromhex(headers["X-Signature-Ed25519"])
    return key, bytes.fromhex(vector["message_hex"]), bytes.fromhex(vector["signature_hex"])


DISCORD_CASES = [pytest.param(v, id=v["name"]) for v in DISCORD]
IDENTITY = (1).to_bytes(32, "little")  # the neutral point (0, 1), canonically encoded
BASE = ed_encode(ED_B)
VERIFIERS = [
    pytest.param(_ed25519_verify_pure, id="pure"),
    pytest.param(_ed25519_verify, id="dispatch"),
]


def test_rfc8032_message_1024_has_1023_bytes() -> None:
    """The transcribed TEST 1024 message has the RFC's length (1023 octets)."""
    assert len(RFC8032_MESSAGE_1024) == 1023


@pytest.mark.parametrize("verify", VERIFIERS)
@pytest.mark.parametrize(("key", "message", "signature"), RFC8032_CASES)
def test_rfc8032_vectors_verify(verify: Any, key: bytes, message: bytes, signature: bytes) -> None:
    """Every RFC 8032 section 7.1 Ed25519 test vector verifies."""
    assert verify(key, message, signature) is True


@pytest.mark.parametrize("vector", DISCORD_CASES)
def test_discord_vectors(vector: dict[str, Any]) -> None:
    """Each vector of shared/vectors/webhooks/discord.json gives its expected result."""
    key, message, signature = _discord_case(vector)
    assert _ed25519_verify_pure(key, message, signature) is vector["expected"]
    assert _ed25519_verify(key, message, signature) is vector["expected"]


@pytest.mark.parametrize("vector", DISCORD_CASES)
def test_discord_vectors_refuse_any_change(vector: dict[str, Any]) -> None:
    """Changing the message, a bit of R, a bit of S or the key makes the signature fail."""
    key, message, signature = _discord_case(vector)
    assert _ed25519_verify_pure(key, message + b" ", signature) is False
    assert _ed25519_verify_pure(key, b"x" + message, signature) is False
    for index in (0, 31, 32, 40):
        flipped = bytearray(signature)
        flipped[index] ^= 0x01
        assert _ed25519_verify_pure(key, message, bytes(flipped)) is False
    other_key = next(k for k, _, _ in RFC8032_VALUES if k != key)
    assert _ed25519_verify_pure(other_key, message, signature) is False


def test_discord_message_is_timestamp_then_body() -> None:
    """The Discord vector signs timestamp + body; body alone or body + timestamp fails."""
    vector = next(v for v in DISCORD if "headers" in v)
    key, _, signature = _discord_case(vector)
    body = vector["body_utf8"].encode()
    stamp = vector["headers"]["X-Signature-Timestamp"].encode()
    assert _ed25519_verify_pure(key, stamp + body, signature) is True
    assert _ed25519_verify_pure(key, body, signature) is False
    assert _ed25519_verify_pure(key, body + stamp, signature) is False


@pytest.mark.parametrize(("key", "message", "signature"), RFC8032_CASES)
def test_non_canonical_s_is_refused(key: bytes, message: bytes, signature: bytes) -> None:
    """S + L satisfies the group equation but is refused (RFC 8032 5.1.7: S must be < L)."""
    s = int.from_bytes(signature[32:], "little")
    malleated = signature[:32] + (s + ED_L).to_bytes(32, "little")
    assert _ed25519_verify_pure(key, message, malleated) is False
    assert _ed25519_verify(key, message, malleated) is False


def test_identity_key_signature_follows_the_cofactorless_equation() -> None:
    """A = identity, R = B, S = 1 satisfies [S]B = R + [k]A and verifies, as RFC 8032 reads."""
    signature = BASE + (1).to_bytes(32, "little")
    assert _ed25519_verify_pure(IDENTITY, b"any message", signature) is True


def test_non_canonical_public_key_is_refused() -> None:
    """The identity encoded with y = p + 1 (>= p) is refused where the canonical one verifies."""
    signature = BASE + (1).to_bytes(32, "little")
    non_canonical = (ED_P + 1).to_bytes(32, "little")
    assert _ed25519_verify_pure(non_canonical, b"m", signature) is False


def test_x_zero_with_sign_bit_is_refused() -> None:
    """A point with x = 0 and the sign bit set is an invalid encoding (RFC 8032 5.1.3 step 4)."""
    signature = BASE + (1).to_bytes(32, "little")
    negative_zero = (1 | 1 << 255).to_bytes(32, "little")
    assert _ed25519_verify_pure(negative_zero, b"m", signature) is False


def test_non_canonical_r_is_refused() -> None:
    """R = identity verifies with S = 0 and A = identity; the same R with y = p + 1 does not."""
    zero = (0).to_bytes(32, "little")
    assert _ed25519_verify_pure(IDENTITY, b"m", IDENTITY + zero) is True
    non_canonical_r = (ED_P + 1).to_bytes(32, "little")
    assert _ed25519_verify_pure(IDENTITY, b"m", non_canonical_r + zero) is False


def _first_y_without_point() -> int:
    for y in range(2, 1000):
        u = (y * y - 1) % ED_P
        v = (ED_D * y * y + 1) % ED_P
        if pow(u * pow(v, -1, ED_P), (ED_P - 1) // 2, ED_P) == ED_P - 1:
            return y
    raise AssertionError("no such y below 1000")  # pragma: no cover


def test_public_key_off_the_curve_is_refused() -> None:
    """A y for which (y^2 - 1) / (d y^2 + 1) has no square root decodes to no point."""
    key = _first_y_without_point().to_bytes(32, "little")
    _, message, signature = RFC8032_VALUES[0]
    assert _ed25519_verify_pure(key, message, signature) is False
    assert _ed25519_verify(key, message, signature) is False


def test_r_off_the_curve_is_refused() -> None:
    """An R that decodes to no point can never match the computed [S]B - [k]A."""
    key, message, signature = RFC8032_VALUES[0]
    bad_r = _first_y_without_point().to_bytes(32, "little")
    assert _ed25519_verify_pure(key, message, bad_r + signature[32:]) is False


@pytest.mark.parametrize("verify", VERIFIERS)
@pytest.mark.parametrize(("key_len", "sig_len"), [(31, 64), (33, 64), (0, 64), (32, 63), (32, 65)])
def test_wrong_lengths_raise_value_error(verify: Any, key_len: int, sig_len: int) -> None:
    """A key that is not 32 bytes or a signature that is not 64 bytes raises ValueError."""
    with pytest.raises(ValueError, match="Ed25519"):
        verify(b"\x01" * key_len, b"m", b"\x00" * sig_len)


def test_ed25519_constants_match_rfc8032() -> None:
    """d, sqrt(-1), B and L in the module are the RFC 8032 5.1 values."""
    assert ED_D == wh._ED_D
    assert pow(wh._ED_SQRT_M1, 2, ED_P) == ED_P - 1
    assert 4 * pow(5, -1, ED_P) % ED_P == wh._ED_BY
    assert (wh._ED_BX, wh._ED_BY) == ED_B
    assert wh._ED_BX % 2 == 0
    x, y = ED_B
    assert (-x * x + y * y - 1 - ED_D * x * x * y * y) % ED_P == 0
    assert ed_mul(ED_L, ED_B) == (0, 1)


def test_oracle_signer_reproduces_rfc8032_test_1() -> None:
    """The test's own reference signer gives RFC 8032 TEST 1's key and signature."""
    seed = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
    key, message, signature = RFC8032_VALUES[0]
    assert ed_sign(seed, message) == (key, signature)


@settings(max_examples=15, deadline=None)
@given(seed=st.binary(min_size=32, max_size=32), message=st.binary(max_size=200))
def test_signatures_from_reference_signer_verify(seed: bytes, message: bytes) -> None:
    """Signatures made by an independent naive RFC 8032 signer verify; a changed message fails."""
    key, signature = ed_sign(seed, message)
    assert _ed25519_verify_pure(key, message, signature) is True
    assert _ed25519_verify_pure(key, message + b"\x00", signature) is False


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(key=st.binary(max_size=40), message=st.binary(max_size=64), signature=st.binary(max_size=70))
def test_fuzz_arbitrary_bytes_give_false_or_value_error(
    key: bytes, message: bytes, signature: bytes
) -> None:
    """Arbitrary key, message and signature bytes give a bool or ValueError, nothing else."""
    try:
        result = _ed25519_verify_pure(key, message, signature)
    except ValueError:
        assert len(key) != 32 or len(signature) != 64
    else:
        assert result is False


@settings(max_examples=100, deadline=None)
@given(
    key=st.binary(min_size=32, max_size=32),
    message=st.binary(max_size=64),
    signature=st.binary(min_size=64, max_size=64),
)
def test_fuzz_right_lengths_never_raise(key: bytes, message: bytes, signature: bytes) -> None:
    """With the right lengths, arbitrary bytes give a bool, never an exception."""
    # Not always False: an all-zero key and signature is a small-order key with a matching
    # small-order R, which RFC 8032's cofactorless equation accepts (hypothesis finds it).
    assert isinstance(_ed25519_verify_pure(key, message, signature), bool)


@settings(max_examples=60, deadline=None)
@given(bit=st.integers(min_value=0, max_value=511), case=st.sampled_from(RFC8032_VALUES))
def test_any_single_bit_flip_in_the_signature_fails(
    bit: int, case: tuple[bytes, bytes, bytes]
) -> None:
    """Flipping any one bit of a valid RFC 8032 signature makes it fail."""
    key, message, signature = case
    flipped = bytearray(signature)
    flipped[bit // 8] ^= 1 << (bit % 8)
    assert _ed25519_verify_pure(key, message, bytes(flipped)) is False


# --- ECDSA P-256 -------------------------------------------------------------------------------

# RFC 6979 appendix A.2.5: P-256 key pair and deterministic SHA-256 signatures.
RFC6979_D = 0xC9AFA9D845BA75166B5C215767B1D6934E50C3DB36E89B127B8A622B120F6721
RFC6979_Q = (
    0x60FED4BA255A9D31C961EB74C6356D68C049B8923B61FA6CE669622E60F29FB6,
    0x7903FE1008B8BC99A41AE9E95628BC64F2F1B20C2D7E9F5177A3C294D4462299,
)
RFC6979_SIGS = {
    b"sample": (
        0xEFD48B2AACB6A8FD1140DD9CD45E81D69D2C877B56AAF991C34D0EA84EAF3716,
        0xF7CB1C942D657C41D436C7A1B6E29F65F3E900DBB9AFF4064DC4AB2F843ACDA8,
    ),
    b"test": (
        0xF1ABB023518351CD71D881567B1EA663ED3EFCF6C5132B354F28D3B0B7D38367,
        0x019F4113742A2B14BD25926B49C649155F267E60D3814B4C0CC84250E46F0083,
    ),
}
RFC6979_CASES = [pytest.param(m, r, s, id=m.decode()) for m, (r, s) in RFC6979_SIGS.items()]
ECDSA_VERIFIERS = [
    pytest.param(_ecdsa_p256_verify_pure, id="pure"),
    pytest.param(_ecdsa_p256_verify, id="dispatch"),
]
SAMPLE_R, SAMPLE_S = RFC6979_SIGS[b"sample"]


def _sendgrid_parts(vector: dict[str, Any]) -> tuple[tuple[int, int], bytes, bytes, bytes]:
    key = _load_p256_public_key(base64.b64decode(vector["public_key_b64_spki"]))
    body = base64.b64decode(vector["body_b64"])
    headers = vector["headers"]
    signature = base64.b64decode(headers["X-Twilio-Email-Event-Webhook-Signature"])
    return key, headers["X-Twilio-Email-Event-Webhook-Timestamp"].encode(), body, signature


SENDGRID_CASES = [pytest.param(v, id=v["name"]) for v in SENDGRID]


@pytest.mark.parametrize("verify", ECDSA_VERIFIERS)
@pytest.mark.parametrize("vector", SENDGRID_CASES)
def test_sendgrid_vectors(verify: Any, vector: dict[str, Any]) -> None:
    """Each vector of shared/vectors/webhooks/sendgrid.json verifies over timestamp + raw body."""
    key, timestamp, body, signature = _sendgrid_parts(vector)
    assert body == vector["body_utf8"].encode()
    assert verify(key, timestamp + body, signature) is vector["expected"]


@pytest.mark.parametrize("vector", SENDGRID_CASES)
def test_sendgrid_negatives(vector: dict[str, Any]) -> None:
    """The file's negatives fail: another key, another signature, payload and timestamp."""
    key, timestamp, body, signature = _sendgrid_parts(vector)
    negatives = vector["negatives"]
    bad_key = _load_p256_public_key(base64.b64decode(negatives["bad_key_b64"]))
    assert _ecdsa_p256_verify_pure(bad_key, timestamp + body, signature) is False
    bad_sig = base64.b64decode(negatives["bad_sig_b64"])
    assert _ecdsa_p256_verify_pure(key, timestamp + body, bad_sig) is False
    bad_payload = negatives["bad_payload"].encode()
    assert _ecdsa_p256_verify_pure(key, timestamp + bad_payload, signature) is False
    bad_timestamp = negatives["bad_timestamp"].encode()
    assert _ecdsa_p256_verify_pure(key, bad_timestamp + body, signature) is False


def test_sendgrid_body_keeps_its_trailing_crlf() -> None:
    """Dropping the body's trailing CRLF (re-serialising) breaks the SendGrid signature."""
    key, timestamp, body, signature = _sendgrid_parts(SENDGRID[0])
    assert body.endswith(b"\r\n")
    assert _ecdsa_p256_verify_pure(key, timestamp + body.rstrip(), signature) is False


@pytest.mark.parametrize("verify", ECDSA_VERIFIERS)
@pytest.mark.parametrize(("message", "r", "s"), RFC6979_CASES)
def test_rfc6979_vectors_verify(verify: Any, message: bytes, r: int, s: int) -> None:
    """RFC 6979 A.2.5 P-256/SHA-256 signatures for "sample" and "test" verify."""
    assert verify(RFC6979_Q, message, der_sig(r, s)) is True
    assert verify(RFC6979_Q, message + b".", der_sig(r, s)) is False


@pytest.mark.parametrize(("message", "r", "s"), RFC6979_CASES)
def test_high_s_is_accepted(message: bytes, r: int, s: int) -> None:
    """ECDSA has no low-S rule: (r, n - s) verifies as well as (r, s)."""
    assert _ecdsa_p256_verify_pure(RFC6979_Q, message, der_sig(r, P256_N - s)) is True


@pytest.mark.parametrize(
    ("r", "s"),
    [
        pytest.param(0, SAMPLE_S, id="r=0"),
        pytest.param(SAMPLE_R, 0, id="s=0"),
        pytest.param(P256_N, SAMPLE_S, id="r=n"),
        pytest.param(SAMPLE_R, P256_N, id="s=n"),
        pytest.param(SAMPLE_R + P256_N, SAMPLE_S, id="r+n"),
        pytest.param(SAMPLE_R, SAMPLE_S + P256_N, id="s+n"),
        pytest.param(2**256 + SAMPLE_R, SAMPLE_S, id="r too wide"),
    ],
)
@pytest.mark.parametrize("verify", ECDSA_VERIFIERS)
def test_out_of_range_r_or_s_is_refused(verify: Any, r: int, s: int) -> None:
    """r and s must both be in [1, n - 1]; r + n and s + n are refused although congruent."""
    assert verify(RFC6979_Q, b"sample", der_sig(r, s)) is False


def _sample_der() -> bytes:
    return der_sig(SAMPLE_R, SAMPLE_S)


_R32 = SAMPLE_R.to_bytes(32, "big")
_S32 = SAMPLE_S.to_bytes(32, "big")
_TEST_S = RFC6979_SIGS[b"test"][1]  # high bit clear: its minimal encoding has no 0x00 pad
MALFORMED_DER = {
    "empty": b"",
    "one byte": b"\x30",
    "wrong outer tag": b"\x31" + _sample_der()[1:],
    "trailing garbage": _sample_der() + b"\x00",
    "extra length byte": b"\x30\x81" + _sample_der()[1:],
    "long form of a short length in r": b"\x30\x47\x02\x81\x21\x00" + _R32 + der_int(SAMPLE_S),
    "indefinite length": b"\x30\x80" + _sample_der()[2:] + b"\x00\x00",
    "three length octets": b"\x30\x83\x00\x00\x46" + _sample_der()[2:],
    "length past the end": b"\x30\x7f" + _sample_der()[2:],
    "truncated long length": b"\x30\x82\x01",
    "negative r": b"\x30\x45\x02\x20" + _R32 + der_int(SAMPLE_S),
    "redundant leading zero": b"\x30\x46"
    + der_int(SAMPLE_R)
    + b"\x02\x21\x00"
    + _TEST_S.to_bytes(32, "big"),
    "empty integer": b"\x30\x04\x02\x00\x02\x00",
    "integer tag wrong": b"\x30\x46\x04\x21\x00" + _R32 + der_int(SAMPLE_S),
    "only r": b"\x30\x23" + der_int(SAMPLE_R),
    "three integers": b"\x30\x49" + der_int(SAMPLE_R) + der_int(SAMPLE_S) + b"\x02\x01\x01",
    "garbage inside sequence": b"\x30\x47" + der_int(SAMPLE_R) + der_int(SAMPLE_S) + b"\x00",
    "raw r||s": _R32 + _S32,
}


def test_malformed_der_fixtures_are_what_they_claim() -> None:
    """The hand-built malformed encodings differ from the valid one (guards the fixtures)."""
    valid = _sample_der()
    assert valid[:4] == b"\x30\x46\x02\x21"  # r and s both need a leading zero byte
    assert der_int(_TEST_S)[:3] == b"\x02\x20\x01"
    assert all(bad != valid for bad in MALFORMED_DER.values())
    consistent_outer_length = (
        "long form of a short length in r",
        "negative r",
        "redundant leading zero",
        "empty integer",
        "integer tag wrong",
        "only r",
        "three integers",
        "garbage inside sequence",
    )
    for name in consistent_outer_length:
        bad = MALFORMED_DER[name]
        assert bad[1] == len(bad) - 2, name  # only the named defect, not a length slip


@pytest.mark.parametrize("verify", ECDSA_VERIFIERS)
@pytest.mark.parametrize("der", list(MALFORMED_DER.values()), ids=list(MALFORMED_DER))
def test_malformed_der_signature_is_refused(verify: Any, der: bytes) -> None:
    """A signature that is not strict DER (X.690) returns False rather than raising."""
    assert verify(RFC6979_Q, b"sample", der) is False


@settings(max_examples=10, deadline=None)
@given(
    d=st.integers(min_value=1, max_value=P256_N - 1),
    k=st.integers(min_value=1, max_value=P256_N - 1),
    message=st.binary(max_size=100),
)
def test_signatures_from_reference_signer_verify_p256(d: int, k: int, message: bytes) -> None:
    """Signatures made with naive affine arithmetic verify with the fast Jacobian code."""
    q = p256_mul(d, P256_G)
    assert q is not None
    r, s = p256_sign(d, k, message)
    assert _ecdsa_p256_verify_pure(q, message, der_sig(r, s)) is True
    assert _ecdsa_p256_verify_pure(q, message + b"!", der_sig(r, s)) is False


def _hash_scalar(message: bytes) -> int:
    return int.from_bytes(hashlib.sha256(message).digest(), "big") % P256_N


def test_sum_at_infinity_is_refused() -> None:
    """Q = -G with r = H(m) makes u1*G + u2*Q the point at infinity: refused, not a crash."""
    neg_g = (P256_G[0], P256_P - P256_G[1])
    r = _hash_scalar(b"m")
    assert p256_oracle_verify(neg_g, b"m", r, 1) is False
    assert _ecdsa_p256_verify_pure(neg_g, b"m", der_sig(r, 1)) is False


@pytest.mark.parametrize("s", [1, 2, 12345, P256_N - 1])
def test_equal_points_in_the_sum_agree_with_the_oracle(s: int) -> None:
    """Q = G with r = H(m) adds a point to itself inside the sum; the result matches the oracle."""
    r = _hash_scalar(b"m")
    expected = p256_oracle_verify(P256_G, b"m", r, s)
    assert _ecdsa_p256_verify_pure(P256_G, b"m", der_sig(r, s)) is expected


def test_p256_constants_match_fips_186() -> None:
    """The module's P-256 constants are the FIPS 186-4 D.1.2.3 values and G has order n."""
    assert wh._P256_P == P256_P
    assert wh._P256_B == P256_B
    assert wh._P256_N == P256_N
    assert (wh._P256_GX, wh._P256_GY) == P256_G
    x, y = P256_G
    assert (y * y - x**3 + 3 * x - P256_B) % P256_P == 0
    assert p256_mul(P256_N, P256_G) is None


def test_off_curve_public_key_raises() -> None:
    """Verify refuses an (x, y) that is not on P-256 with ValueError: a programming error."""
    bad = (RFC6979_Q[0], RFC6979_Q[1] + 1)
    for verify in (_ecdsa_p256_verify_pure, _ecdsa_p256_verify):
        with pytest.raises(ValueError, match="not a point on the P-256 curve"):
            verify(bad, b"sample", _sample_der())


@settings(max_examples=200, deadline=None)
@given(signature=st.binary(max_size=80), message=st.binary(max_size=32))
def test_fuzz_signature_bytes_give_false(signature: bytes, message: bytes) -> None:
    """Arbitrary signature bytes are refused with False, never an exception."""
    assert _ecdsa_p256_verify_pure(RFC6979_Q, message, signature) is False


@settings(max_examples=100, deadline=None)
@given(
    r=st.integers(min_value=0, max_value=2**264),
    s=st.integers(min_value=0, max_value=2**264),
)
def test_fuzz_well_formed_der_with_any_integers_gives_false(r: int, s: int) -> None:
    """Well-formed DER around arbitrary non-negative integers verifies False, never raises."""
    assert _ecdsa_p256_verify_pure(RFC6979_Q, b"sample", der_sig(r, s)) is False


# --- P-256 public key loading ------------------------------------------------------------------


def test_rfc6979_key_in_every_encoding_loads_to_the_same_point() -> None:
    """SPKI DER, raw uncompressed and raw compressed SEC1 all load to (Ux, Uy)."""
    assert _load_p256_public_key(spki(RFC6979_Q)) == RFC6979_Q
    assert _load_p256_public_key(sec1(RFC6979_Q)) == RFC6979_Q
    assert sec1(RFC6979_Q, compressed=True)[0] == 0x03
    assert _load_p256_public_key(sec1(RFC6979_Q, compressed=True)) == RFC6979_Q
    assert _load_p256_public_key(bytearray(spki(RFC6979_Q))) == RFC6979_Q


def test_compressed_even_y_loads() -> None:
    """A 0x02 compressed key decompresses to the even square root."""
    negated = (RFC6979_Q[0], P256_P - RFC6979_Q[1])
    encoded = sec1(negated, compressed=True)
    assert encoded[0] == 0x02
    assert _load_p256_public_key(encoded) == negated


def test_sendgrid_key_is_spki_of_its_point() -> None:
    """The SendGrid key is id-ecPublicKey/prime256v1 SPKI; rebuilding it gives the same bytes."""
    raw = base64.b64decode(SENDGRID[0]["public_key_b64_spki"])
    assert spki(_load_p256_public_key(raw)) == raw


def _x_without_point() -> int:
    for x in range(1, 1000):
        rhs = (x**3 - 3 * x + P256_B) % P256_P
        if pow(rhs, (P256_P - 1) // 2, P256_P) == P256_P - 1:
            return x
    raise AssertionError("no such x below 1000")  # pragma: no cover


_X = RFC6979_Q[0].to_bytes(32, "big")
_Y = RFC6979_Q[1].to_bytes(32, "big")
_P = P256_P.to_bytes(32, "big")
_GOOD_SPKI = spki(RFC6979_Q)
_OTHER_ALGORITHM = bytearray(_GOOD_SPKI)
_OTHER_ALGORITHM[12] = 0x02  # 1.2.840.10045.2.2 instead of id-ecPublicKey
_SECP384R1_ALG = bytes.fromhex("301006072a8648ce3d020106052b81040022")
_EXTRA_PARAM_ALG = bytes.fromhex("301506072a8648ce3d020106082a8648ce3d0301070500")
_BIT_STRING = b"\x03\x42\x00" + sec1(RFC6979_Q)
_BAD_SPKI = {
    "empty": (b"", "65 bytes"),
    "infinity": (b"\x00", "infinity"),
    "hybrid prefix 0x06": (b"\x06" + _X + _Y, "65 bytes"),
    "uncompressed but 64 bytes": ((b"\x04" + _X + _Y)[:-1], "65 bytes"),
    "compressed with 0x04 length": (b"\x04" + _X, "65 bytes"),
    "y off the curve": (b"\x04" + _X + (RFC6979_Q[1] ^ 1).to_bytes(32, "big"), "not a point"),
    "x = p": (b"\x04" + _P + _Y, "not a point"),
    "y = p": (b"\x04" + _X + _P, "not a point"),
    "compressed x = p": (b"\x02" + _P, "below p"),
    "compressed x without a point": (
        b"\x02" + _x_without_point().to_bytes(32, "big"),
        "not a point",
    ),
    "other algorithm": (bytes(_OTHER_ALGORITHM), "id-ecPublicKey"),
    "secp384r1 curve": (b"\x30\x56" + _SECP384R1_ALG + _BIT_STRING, "prime256v1"),
    "extra algorithm parameter": (b"\x30\x5b" + _EXTRA_PARAM_ALG + _BIT_STRING, "prime256v1"),
    "no curve parameter": (
        b"\x30\x4f\x30\x09\x06\x07\x2a\x86\x48\xce\x3d\x02\x01" + _BIT_STRING,
        "tag 0x06",
    ),
    "trailing bytes after": (_GOOD_SPKI + b"\x00", "trailing bytes after"),
    "trailing bytes inside": (b"\x30\x5a" + _GOOD_SPKI[2:] + b"\x00", "trailing bytes inside"),
    "unused bits": (SPKI_PREFIX[:-1] + b"\x01" + sec1(RFC6979_Q), "unused bits"),
    "empty bit string": (b"\x30\x17" + _GOOD_SPKI[2:23] + b"\x03\x00", "unused bits"),
    "non-minimal long length": (b"\x30\x81\x59" + _GOOD_SPKI[2:], "non-minimal"),
    "two-octet length, short value": (b"\x30\x82\x00\x59" + _GOOD_SPKI[2:], "non-minimal"),
    "two-octet length, leading zero": (b"\x30\x82\x00\x90" + bytes(0x90), "non-minimal"),
    "indefinite length": (b"\x30\x80" + _GOOD_SPKI[2:] + b"\x00\x00", "indefinite"),
    "three length octets": (b"\x30\x83\x00\x00\x59" + _GOOD_SPKI[2:], "more than 2"),
    "truncated": (_GOOD_SPKI[:40], "past the end"),
    "truncated length": (b"\x30\x82\x01", "truncated DER length"),
    "lone tag": (b"\x30", "truncated DER element"),
    "bit string tag wrong": (SPKI_PREFIX[:-3] + b"\x04\x42\x00" + sec1(RFC6979_Q), "tag 0x03"),
    "long valid length, wrong contents": (b"\x30\x82\x01\x00" + b"\x05\x00" * 128, "tag 0x30"),
}


def test_bad_key_fixtures_have_the_lengths_they_claim() -> None:
    """The hand-built DER fixtures are internally consistent (outer length matches)."""
    names = (
        "other algorithm",
        "secp384r1 curve",
        "extra algorithm parameter",
        "no curve parameter",
        "empty bit string",
        "unused bits",
        "bit string tag wrong",
    )
    for name in names:
        data = _BAD_SPKI[name][0]
        assert data[1] == len(data) - 2, name
        bit_string_at = 4 + data[3]  # just after the AlgorithmIdentifier
        assert data[bit_string_at] == (0x04 if name == "bit string tag wrong" else 0x03), name
        assert data[bit_string_at + 1] == len(data) - bit_string_at - 2, name


@pytest.mark.parametrize(("data", "reason"), list(_BAD_SPKI.values()), ids=list(_BAD_SPKI))
def test_bad_public_keys_raise_value_error(data: bytes, reason: str) -> None:
    """Anything but one valid P-256 key raises ValueError naming the reason."""
    with pytest.raises(ValueError, match=reason):
        _load_p256_public_key(data)


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=100))
def test_fuzz_public_key_bytes(data: bytes) -> None:
    """Arbitrary bytes load to a point on the curve or raise ValueError, nothing else."""
    try:
        x, y = _load_p256_public_key(data)
    except ValueError:
        return
    assert (y * y - x**3 + 3 * x - P256_B) % P256_P == 0


@settings(max_examples=300, deadline=None)
@given(
    position=st.integers(min_value=0, max_value=len(spki(RFC6979_Q)) - 1),
    value=st.integers(min_value=0, max_value=255),
)
def test_fuzz_mutated_spki(position: int, value: int) -> None:
    """Changing any byte of a valid SPKI gives the same key back or ValueError."""
    data = bytearray(spki(RFC6979_Q))
    data[position] = value
    try:
        point = _load_p256_public_key(bytes(data))
    except ValueError:
        return
    assert point == RFC6979_Q


# --- The optional cryptography accelerator -----------------------------------------------------


class FakeInvalidSignatureError(Exception):
    """Stands in for cryptography.exceptions.InvalidSignature."""


def _fake_backend(calls: list[str]) -> tuple[Any, Any, Any, type[Exception]]:
    """Objects shaped like cryptography's hazmat API, verifying with the pure functions."""

    class Ed25519PublicKey:
        def __init__(self, data: bytes) -> None:
            self.data = data

        @classmethod
        def from_public_bytes(cls, data: bytes) -> Ed25519PublicKey:
            calls.append("ed25519.load")
            if data == IDENTITY:
                raise ValueError("rejected by the fake backend")
            return cls(data)

        def verify(self, signature: bytes, message: bytes) -> None:
            calls.append("ed25519.verify")
            if not _ed25519_verify_pure(self.data, message, signature):
                raise FakeInvalidSignatureError

    class PublicKey:
        def __init__(self, point: tuple[int, int]) -> None:
            self.point = point

        def verify(self, signature: bytes, message: bytes, algorithm: object) -> None:
            calls.append(f"ec.verify:{algorithm}")
            if not _ecdsa_p256_verify_pure(self.point, message, signature):
                raise FakeInvalidSignatureError

    class EllipticCurvePublicNumbers:
        def __init__(self, x: int, y: int, curve: object) -> None:
            assert curve == "secp256r1"
            self.point = (x, y)

        def public_key(self) -> PublicKey:
            calls.append("ec.load")
            return PublicKey(self.point)

    ed25519 = types.SimpleNamespace(Ed25519PublicKey=Ed25519PublicKey)
    ec = types.SimpleNamespace(
        EllipticCurvePublicNumbers=EllipticCurvePublicNumbers,
        SECP256R1=lambda: "secp256r1",
        ECDSA=lambda hash_algorithm: f"ecdsa-{hash_algorithm}",
    )
    hashes = types.SimpleNamespace(SHA256=lambda: "sha256")
    return ed25519, ec, hashes, FakeInvalidSignatureError


@pytest.fixture
def fake_backend(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Install the fake accelerator; return the list of calls it records."""
    calls: list[str] = []
    backend = _fake_backend(calls)
    monkeypatch.setattr(wh, "_cryptography_backend", lambda: backend)
    return calls


def test_backend_absent_gives_none_and_is_cached(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without cryptography the backend is None, and the import is attempted only once."""
    attempts: list[str] = []

    def missing(name: str) -> types.ModuleType:
        attempts.append(name)
        raise ImportError(name)

    monkeypatch.setattr(wh, "_CRYPTOGRAPHY_BACKEND_CACHE", [])
    monkeypatch.setattr(importlib, "import_module", missing)
    assert _cryptography_backend() is None
    assert _cryptography_backend() is None
    assert len(attempts) == 1


def test_backend_present_returns_its_modules(monkeypatch: pytest.MonkeyPatch) -> None:
    """With cryptography importable the backend is its ed25519, ec, hashes and InvalidSignature."""
    modules = {
        name: types.SimpleNamespace(name=name, InvalidSignature=FakeInvalidSignatureError)
        for name in (
            "cryptography.hazmat.primitives.asymmetric.ed25519",
            "cryptography.hazmat.primitives.asymmetric.ec",
            "cryptography.hazmat.primitives.hashes",
            "cryptography.exceptions",
        )
    }
    monkeypatch.setattr(wh, "_CRYPTOGRAPHY_BACKEND_CACHE", [])
    monkeypatch.setattr(importlib, "import_module", modules.__getitem__)
    backend = _cryptography_backend()
    assert backend is not None
    ed25519, ec, hashes, invalid = backend
    assert ed25519.name.endswith(".ed25519")
    assert ec.name.endswith(".ec")
    assert hashes.name.endswith(".hashes")
    assert invalid is FakeInvalidSignatureError
    assert _cryptography_backend() is backend


def test_real_environment_has_no_backend_or_a_working_one() -> None:
    """The dispatching verifiers agree with the pure ones whatever is installed."""
    key, message, signature = RFC8032_VALUES[1]
    assert _ed25519_verify(key, message, signature) is _ed25519_verify_pure(key, message, signature)
    der = _sample_der()
    assert _ecdsa_p256_verify(RFC6979_Q, b"sample", der) is True


@pytest.mark.parametrize(("key", "message", "signature"), RFC8032_CASES)
def test_ed25519_uses_the_backend_when_present(
    fake_backend: list[str], key: bytes, message: bytes, signature: bytes
) -> None:
    """With the accelerator, Ed25519 verification goes through it and keeps its answers."""
    assert _ed25519_verify(key, message, signature) is True
    assert fake_backend == ["ed25519.load", "ed25519.verify"]
    assert _ed25519_verify(key, message + b"?", signature) is False


def test_ed25519_backend_path_keeps_the_encoding_checks(fake_backend: list[str]) -> None:
    """S >= L and a non-canonical key are refused before the accelerator is called."""
    key, message, signature = RFC8032_VALUES[0]
    s = int.from_bytes(signature[32:], "little")
    assert (
        _ed25519_verify(key, message, signature[:32] + (s + ED_L).to_bytes(32, "little")) is False
    )
    non_canonical = (ED_P + 1).to_bytes(32, "little")
    assert _ed25519_verify(non_canonical, message, BASE + (1).to_bytes(32, "little")) is False
    assert fake_backend == []
    with pytest.raises(ValueError, match="32 bytes"):
        _ed25519_verify(key[:31], message, signature)
    with pytest.raises(ValueError, match="64 bytes"):
        _ed25519_verify(key, message, signature[:63])


def test_ed25519_backend_value_error_means_false(fake_backend: list[str]) -> None:
    """A key the accelerator rejects with ValueError gives False, not an exception."""
    assert _ed25519_verify_pure(IDENTITY, b"m", BASE + (1).to_bytes(32, "little")) is True
    assert _ed25519_verify(IDENTITY, b"m", BASE + (1).to_bytes(32, "little")) is False
    assert fake_backend == ["ed25519.load"]


@pytest.mark.parametrize(("message", "r", "s"), RFC6979_CASES)
def test_ecdsa_uses_the_backend_when_present(
    fake_backend: list[str], message: bytes, r: int, s: int
) -> None:
    """With the accelerator, ECDSA goes through it with SHA-256 and keeps its answers."""
    assert _ecdsa_p256_verify(RFC6979_Q, message, der_sig(r, s)) is True
    assert fake_backend == ["ec.load", "ec.verify:ecdsa-sha256"]
    assert _ecdsa_p256_verify(RFC6979_Q, message + b"?", der_sig(r, s)) is False


def test_ecdsa_backend_path_keeps_the_der_and_range_checks(fake_backend: list[str]) -> None:
    """Malformed DER and out-of-range r, s are refused before the accelerator is called."""
    assert _ecdsa_p256_verify(RFC6979_Q, b"sample", _sample_der() + b"\x00") is False
    assert _ecdsa_p256_verify(RFC6979_Q, b"sample", der_sig(0, SAMPLE_S)) is False
    assert _ecdsa_p256_verify(RFC6979_Q, b"sample", der_sig(SAMPLE_R, P256_N)) is False
    assert fake_backend == []
    with pytest.raises(ValueError, match="not a point"):
        _ecdsa_p256_verify((1, 1), b"sample", _sample_der())
