import pytest

from crm.citizens.phones import InvalidPhone, mask_phone, normalise_phone


@pytest.mark.parametrize("raw", ["8 912 345-67-89", "+7 (912) 345 67 89", "89123456789", "9123456789",
                                 "+79123456789", "8(912)345-67-89"])
def test_every_russian_spelling_gives_one_e164(raw):
    assert normalise_phone(raw) == "+79123456789"


def test_moscow_landline():
    assert normalise_phone("8 495 123-45-67") == "+74951234567"


@pytest.mark.parametrize("raw", ["112", "3456789", "+44 20 7946 0958", "007 912 345 67 89", "abc", "", "+7 000 000 00 00",
                                 "8 912 345-67-89; DROP TABLE"])
def test_short_foreign_and_garbage_are_refused(raw):
    with pytest.raises(InvalidPhone):
        normalise_phone(raw)


def test_mask():
    assert mask_phone("+79123456789") == "+7 912 ***-**-89"
