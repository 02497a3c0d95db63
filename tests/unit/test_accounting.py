from opensre.collect.decode import decode_status, split_cpu


def test_split_cpu_keeps_total_and_ratio():
    u, s = split_cpu(1_000_000_000, 300, 100)
    assert u + s == 1_000_000_000 and s == 250_000_000
    assert split_cpu(5, 0, 0) == (5, 0)
    assert split_cpu(5, 0, 7) == (0, 5)


def test_decode_status():
    assert decode_status(3 << 8) == (3, None, False)
    assert decode_status(9) == (None, 9, False)
    assert decode_status(11 | 0x80) == (None, 11, True)
    assert decode_status(0) == (0, None, False)
