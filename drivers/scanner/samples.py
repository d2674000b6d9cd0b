"""Sample bills for the scanner simulator, demos and technicians' test prints.

The payee is fictitious; the accounts carry correct Bank of Russia control
keys for their BICs and the INN has correct check digits, so the samples pass
every check :func:`~drivers.scanner.gost_qr.decode_payment_qr` makes.
"""

from __future__ import annotations

from typing import Final

from drivers.scanner.gost_qr import PaymentQr, QrEncoding, make_payment_qr

__all__ = ["SAMPLE_BILL_FIELDS", "sample_bill"]

SAMPLE_BILL_FIELDS: Final[dict[str, str | int]] = {
    "Name": 'ТСЖ "Берёзовая роща"',
    "PersonalAcc": "40703810800000001234",
    "BankName": "ПАО СБЕРБАНК г. Москва",
    "BIC": "044525225",
    "CorrespAcc": "30101810400000000225",
    "PayeeINN": "7701234560",
    "KPP": "770101001",
    "Sum": 345678,
    "Purpose": "Оплата ЖКУ за март 2025",
    "lastName": "Ёлкина",
    "firstName": "Анна",
    "middleName": "Сергеевна",
    "payerAddress": "г. Москва, ул. Садовая, д. 1, кв. 12",
    "persAcc": "123456782",
    "paymPeriod": "03.2025",
    "serviceName": "ЖКУ",
}


def sample_bill(encoding: QrEncoding = QrEncoding.UTF_8, **overrides: str | int) -> PaymentQr:
    """The sample bill in ``encoding``, with fields replaced by ``overrides``."""
    values = dict(SAMPLE_BILL_FIELDS)
    values.update(overrides)
    return make_payment_qr(values, encoding=encoding)
