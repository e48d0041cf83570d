"""The pure parts of the certificate authority: CSR checks, issuing, chains, hash data, firmware signatures.
Expected values are computed here independently (hashlib over the DER parts, cryptography's own verification)."""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime, timedelta, timezone

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from gateway.certificates import authority, csr, firmware
from gateway.certificates.authority import CertificateError, Signer
from gateway.certificates.hashdata import hash_data, issuer_of, same

NOW = datetime(2026, 6, 1, 12, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def ca() -> Signer:
    return authority.create("Unit CPO", NOW)


def _csr(key, cn: str = "CP-1", o: str | None = "Unit CPO") -> str:
    names = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if o is not None:
        names.insert(0, x509.NameAttribute(NameOID.ORGANIZATION_NAME, o))
    algorithm = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    request = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(names)).sign(key, algorithm)
    return request.public_bytes(serialization.Encoding.PEM).decode()


@pytest.mark.parametrize("key", [rsa.generate_private_key(65537, 2048), rsa.generate_private_key(65537, 3072),
                                 ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP384R1())],
                         ids=["rsa2048", "rsa3072", "p256", "p384"])
def test_csr_accepted_for_the_allowed_keys(key):
    outcome = csr.check(_csr(key), "CP-1", "Unit CPO")
    assert isinstance(outcome, csr.Accepted)


@pytest.mark.parametrize("text, cpo, why", [
    (_csr(rsa.generate_private_key(65537, 1024)), "Unit CPO", "1024 bits"),
    (_csr(ec.generate_private_key(ec.SECP521R1())), "Unit CPO", "secp521r1"),
    (_csr(ec.generate_private_key(ec.SECP256K1())), "Unit CPO", "secp256k1"),
    (_csr(ed25519.Ed25519PrivateKey.generate()), "Unit CPO", "Ed25519"),
    (_csr(ec.generate_private_key(ec.SECP256R1()), cn="CP-2"), "Unit CPO", "common name is 'CP-2'"),
    (_csr(ec.generate_private_key(ec.SECP256R1()), o="Another CPO"), "Unit CPO", "CpoName 'Unit CPO'"),
    (_csr(ec.generate_private_key(ec.SECP256R1()), o=None), None, "no organisation"),
    ("-----BEGIN CERTIFICATE REQUEST-----\nTm90IGEgQ1NS\n-----END CERTIFICATE REQUEST-----\n", None, "not a PEM"),
    (None, None, "not text"),
])
def test_csr_refused_with_the_reason(text, cpo, why):
    outcome = csr.check(text, "CP-1", cpo)
    assert isinstance(outcome, csr.Refused) and why in outcome.reason, outcome


def test_a_csr_whose_signature_does_not_verify_is_refused():
    good = x509.load_pem_x509_csr(_csr(ec.generate_private_key(ec.SECP256R1())).encode())
    der = bytearray(good.public_bytes(serialization.Encoding.DER))
    der[-5] ^= 0x01  # inside the signature
    tampered = x509.load_der_x509_csr(bytes(der)).public_bytes(serialization.Encoding.PEM).decode()
    outcome = csr.check(tampered, "CP-1", "Unit CPO")
    assert isinstance(outcome, csr.Refused) and "signature" in outcome.reason


def test_without_a_known_cpo_name_any_organisation_is_taken():
    assert isinstance(csr.check(_csr(ec.generate_private_key(ec.SECP256R1()), o="Whoever"), "CP-1", None),
                      csr.Accepted)


def test_issued_certificate_is_under_the_root_and_for_client_authentication(ca):
    key = rsa.generate_private_key(65537, 2048)
    outcome = csr.check(_csr(key), "CP-1", "Unit CPO")
    leaf = authority.issue(ca, outcome.csr, NOW, 365)
    leaf.verify_directly_issued_by(ca.certificate)
    ca.certificate.verify_directly_issued_by(ca.root)
    assert leaf.public_key().public_numbers() == key.public_key().public_numbers()
    assert leaf.subject == outcome.csr.subject and leaf.not_valid_after_utc - NOW <= timedelta(days=365)
    assert leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value == x509.ExtendedKeyUsage(
        [ExtendedKeyUsageOID.CLIENT_AUTH])
    assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    # The chain sent: the certificate and the issuing CA, not the root the charger has.
    chain = x509.load_pem_x509_certificates(authority.chain_of(leaf, ca).encode())
    assert chain == [leaf, ca.certificate]
    assert authority.verify_chain(authority.chain_of(leaf, ca), [ca.root], NOW) == leaf


def test_a_certificate_never_outlives_its_issuer(ca):
    outcome = csr.check(_csr(ec.generate_private_key(ec.SECP256R1())), "CP-1", "Unit CPO")
    leaf = authority.issue(ca, outcome.csr, NOW, 100 * 365)
    assert leaf.not_valid_after_utc <= ca.certificate.not_valid_after_utc


def test_verify_chain_refuses_what_does_not_lead_to_the_root(ca):
    other = authority.create("Other", NOW)
    outcome = csr.check(_csr(ec.generate_private_key(ec.SECP256R1())), "CP-1", "Unit CPO")
    leaf = authority.issue(ca, outcome.csr, NOW, 30)
    chain = authority.chain_of(leaf, ca)
    with pytest.raises(CertificateError, match="not a trusted root|not issued by"):
        authority.verify_chain(chain, [other.root], NOW)
    with pytest.raises(CertificateError, match="not valid now"):
        authority.verify_chain(chain, [ca.root], NOW + timedelta(days=31))
    with pytest.raises(CertificateError, match="not a trusted root"):  # the intermediate left out
        authority.verify_chain(authority.pem(leaf), [ca.root], NOW)


def test_import_checks_the_key_and_the_chain(ca):
    bundle = authority.pem(ca.certificate) + ca.chain_pem()
    again = Signer.from_pem(bundle, ca.key_pem())
    assert again.certificate == ca.certificate and again.root == ca.root
    other = authority.create("Other", NOW)
    with pytest.raises(CertificateError, match="does not belong"):
        Signer.from_pem(bundle, other.key_pem())
    with pytest.raises(CertificateError, match="is not issued by"):
        Signer.from_pem(authority.pem(ca.certificate) + other.chain_pem(), ca.key_pem())
    with pytest.raises(CertificateError, match="not an unencrypted PEM key"):
        Signer.from_pem(bundle, "not a key")
    with pytest.raises(CertificateError, match="PEM certificate"):
        Signer.from_pem("nothing", ca.key_pem())


def test_key_pem_is_the_only_way_out_of_a_signer(ca):
    assert "PRIVATE KEY" not in repr(ca) and "PRIVATE KEY" in ca.key_pem()


def _independent_hash_data(certificate: x509.Certificate, issuer: x509.Certificate, name: str) -> dict:
    digest = getattr(hashlib, name.lower())
    key = issuer.public_key()
    if isinstance(key, ec.EllipticCurvePublicKey):
        bits = key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    else:
        bits = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
    return {"hashAlgorithm": name, "issuerNameHash": digest(certificate.issuer.public_bytes()).hexdigest(),
            "issuerKeyHash": digest(bits).hexdigest(), "serialNumber": format(certificate.serial_number, "x")}


@pytest.mark.parametrize("algorithm", ["SHA256", "SHA384", "SHA512"])
def test_hash_data_of_a_root_and_of_an_issued_certificate(ca, algorithm):
    assert hash_data(ca.root, ca.root, algorithm) == _independent_hash_data(ca.root, ca.root, algorithm)
    assert hash_data(ca.certificate, ca.root, algorithm) == _independent_hash_data(ca.certificate, ca.root,
                                                                                   algorithm)
    # An RSA issuer too (its key hashed as the PKCS#1 structure, as in an OCSP CertID).
    key = rsa.generate_private_key(65537, 2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "RSA root")])
    root = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(0x0100).not_valid_before(NOW).not_valid_after(NOW + timedelta(days=1))
            .sign(key, hashes.SHA256()))
    data = hash_data(root, root, algorithm)
    assert data == _independent_hash_data(root, root, algorithm) and data["serialNumber"] == "100"


def test_issuer_of_and_same(ca):
    assert issuer_of([ca.root]) is ca.root
    assert issuer_of([ca.certificate, ca.root]) is ca.root
    assert issuer_of([ca.certificate]) is None
    data = hash_data(ca.root, ca.root, "SHA256")
    assert same(data, {**data, "issuerKeyHash": data["issuerKeyHash"].upper(), "serialNumber": "00" + data[
        "serialNumber"]})
    assert not same(data, {**data, "hashAlgorithm": "SHA384"})


def test_firmware_signature_verifies_with_the_signing_certificate_only(ca):
    signer = authority.firmware_signer(ca, "Unit CPO", NOW)
    signer.certificate.verify_directly_issued_by(ca.certificate)
    content = b"\x7fELF firmware image" * 100
    signature = firmware.sign(signer.key, content)
    signer.certificate.public_key().verify(base64.b64decode(signature), content, ec.ECDSA(hashes.SHA256()))
    assert firmware.verify(signer.certificate, content, signature)
    assert not firmware.verify(signer.certificate, content + b"!", signature)
    assert not firmware.verify(signer.certificate, content, "not base64!")
    assert not firmware.verify(ca.certificate, content, signature)  # another key


def test_rsa_firmware_signature():
    key = rsa.generate_private_key(65537, 2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "RSA signer")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(7).not_valid_before(NOW).not_valid_after(NOW + timedelta(days=1)).sign(key, hashes.SHA256()))
    signature = firmware.sign(key, b"image")
    key.public_key().verify(base64.b64decode(signature), b"image", padding.PKCS1v15(), hashes.SHA256())
    assert firmware.verify(cert, b"image", signature) and not firmware.verify(cert, b"imagE", signature)
