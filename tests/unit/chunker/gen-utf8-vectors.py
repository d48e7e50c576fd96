#!/usr/bin/env python3
# Writes utf8-vectors.txt: random byte strings and what the storage contract's
# text rules make of them, computed by Python's own UTF-8 decoder (the
# reference the contract names). Rerun only to extend the vectors:
#   python3 gen-utf8-vectors.py > utf8-vectors.txt
import random

def normalize(raw):
    if raw.startswith(b'\xef\xbb\xbf'):
        raw = raw[3:]
    text = raw.decode('utf-8', 'replace')
    return text.replace('\r\n', '\n').replace('\r', '\n').encode('utf-8')

# Bytes where the rules have edges: every lead-byte class, the boundaries of
# the second-byte ranges of Table 3-7, CR/LF, the BOM, and valid characters.
PIECES = [b'a', b'Z', b' ', b'\n', b'\r', b'\r\n', b'\x00', b'\x7f',
          b'\x80', b'\x8f', b'\x90', b'\x9f', b'\xa0', b'\xbf',
          b'\xc0', b'\xc1', b'\xc2', b'\xdf', b'\xe0', b'\xe1', b'\xec', b'\xed',
          b'\xee', b'\xef', b'\xf0', b'\xf1', b'\xf3', b'\xf4', b'\xf5', b'\xf8',
          b'\xfe', b'\xff', b'\xef\xbb\xbf',
          'é'.encode(), '€'.encode(), '\ud7ff'.encode(), '\ue000'.encode(),
          '😀'.encode(), '\U0010ffff'.encode(), 'abcdefghijklmnop'.encode()]

def main():
    rng = random.Random(20240601)
    seen = set()
    out = []
    while len(out) < 2000:
        n = rng.randint(0, 12)
        raw = b''.join(rng.choice(PIECES) for _ in range(n))
        if rng.random() < 0.3:
            raw = b'x' * rng.randint(1, 20) + raw   # shift alignment for the 8-byte scan
        if raw in seen:
            continue
        seen.add(raw)
        out.append('%s %s' % (raw.hex() or '-', normalize(raw).hex() or '-'))
    print('\n'.join(out))

main()
