# A file system whose reads past HANG_AT bytes are never answered: what a card reader stuck in a
# read looks like to the dock (the read stays in the kernel; no signal, no timeout ends it). Raw
# FUSE over /dev/fuse (needs root), one read-only 8 MiB file `big.bin`, no libfuse. Killing this
# process ends the stuck reads with ENOTCONN; unmount the folder afterwards (umount -l).
# With `hang-readdir` as third argument, listing the root folder is never answered either: a bay
# whose card reader does not answer the dock's first look.
# Usage: python3 stuckReadFs.py <mount folder> [hang at byte offset] [hang-readdir]
import os, struct, ctypes, sys, threading
MNT = sys.argv[1]; SIZE = 8 << 20; HANG_AT = int(sys.argv[2]) if len(sys.argv) > 2 else (1 << 20)
HANG_READDIR = len(sys.argv) > 3 and sys.argv[3] == 'hang-readdir'
fd = os.open('/dev/fuse', os.O_RDWR)
libc = ctypes.CDLL(None, use_errno=True)
opts = f'fd={fd},rootmode=40000,user_id=0,group_id=0,allow_other'.encode()
if libc.mount(b'bodycam-stuck-read', MNT.encode(), b'fuse', 6, opts) != 0:
    print('mount failed', ctypes.get_errno(), flush=True); sys.exit(1)
print('mounted', flush=True)
def attr(ino):
    if ino == 1: mode, size, nlink = 0o40755, 0, 2
    else: mode, size, nlink = 0o100644, SIZE, 1
    return struct.pack('<QQQQQQIIIIIIIIII', ino, size, (size + 511)//512, 0, 0, 0, 0, 0, 0, mode, nlink, 0, 0, 0, 4096, 0)
def reply(unique, err=0, body=b''):
    os.write(fd, struct.pack('<IiQ', 16 + len(body), -err if err else 0, unique) + body)
while True:
    try: buf = os.read(fd, 1 << 21)
    except OSError as e:
        print('read err', e, flush=True); break
    ln, op, unique, node = struct.unpack_from('<IIQQ', buf, 0)
    body = buf[40:ln]
    if op == 26:  # INIT
        major, minor, ra, flags = struct.unpack_from('<IIII', body)
        reply(unique, 0, struct.pack('<IIIIHHIIHHI', 7, 31, ra, 0, 16, 12, 1 << 17, 1, 32, 0, 0) + b'\0' * 28)
    elif op == 1:  # LOOKUP
        name = body.split(b'\0')[0]
        if node == 1 and name == b'big.bin': reply(unique, 0, struct.pack('<QQQQII', 2, 0, 1, 1, 0, 0) + attr(2))
        else: reply(unique, 2)
    elif op == 3: reply(unique, 0, struct.pack('<QII', 1, 0, 0) + attr(node))
    elif op in (14, 27): reply(unique, 0, struct.pack('<QII', 1, 1 if op == 14 else 0, 0))  # FOPEN_DIRECT_IO on files
    elif op == 15:  # READ
        fh, off, size = struct.unpack_from('<QQI', body)
        if off >= HANG_AT:
            print('READ at', off, 'left unanswered', flush=True); continue
        n = max(0, min(size, SIZE - off)); reply(unique, 0, b'\1' * n)
    elif op in (18, 29, 25): reply(unique)
    elif op in (2, 42, 36): continue
    elif op == 28:
        if HANG_READDIR: print('READDIR left unanswered', flush=True); continue
        reply(unique, 0, b'')
    else: reply(unique, 38)
