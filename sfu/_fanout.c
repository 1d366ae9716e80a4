/*
 * sfu._fanout: the SFU's per-packet fan-out loop in C.
 *
 * One call per incoming RTP packet sends it to every subscriber (DownTrack) of its UpTrack:
 * sequence/timestamp rewrite, a fresh 12-byte header, srtp_protect, then into the kernel. The Python loop
 * did the same work at ~3-5 us of interpreter and cffi overhead per subscriber on top of the
 * ~1.5 us of libsrtp and the kernel's send; at 200 subscribers that overhead was the difference
 * between keeping up with a paced keyframe and queueing behind it.
 *
 * Two small types hold the state this loop reads and writes, so Python and C share it:
 *
 *   Lane    one DownTrack's per-subscriber state: the Forwarder's rewrite state (sfu.forwarder
 *           subclasses Lane and keeps all of its logic in Python) plus the subscriber's SSRC,
 *           payload type, counters, and its Egress.
 *   Egress  one subscriber transport's send side: a UDP socket, a libsrtp session (srtp_t)
 *           and, on the node's shared media port (media.udp_port), the subscriber's address;
 *           set and cleared by sfu.glue.RawTransport, which also keeps the Python objects that
 *           own them alive through ``keep``.
 *
 * Sending. On the shared media port every subscriber is reached through the same socket, so the
 * copies of one packet are collected, each in its own buffer with its subscriber's sockaddr, and
 * handed to the kernel with one sendmmsg() per up to BATCH_MAX copies (set_batch_size(), 64 by
 * default): one syscall instead of one per subscriber. With per-connection sockets
 * (media.udp_mux: false) the Egress has no address and its socket is connect()-ed: that copy
 * goes out at once with send(), as before. A copy the kernel refuses (EAGAIN/ENOBUFS: the
 * socket buffer is full) is lost for that subscriber alone and its video waits for the next
 * keyframe; the rest of that batch is not tried (the buffer is full for them too) and takes
 * the same rule. Any other error (a firewall's EPERM for one address) loses that copy only.
 * The batch is always sent before Python code runs (a lane that is not in the steady state) and
 * before fanout() returns, so no pointer in it outlives the call.
 *
 * Only the steady state runs here: a lane that has started its source, is not paused, and
 * whose Egress is ready. Everything else (waiting for a keyframe, the first packet of a
 * segment, a transport still connecting or on a TURN relay) is handed to the DownTrack's own
 * Python ``forward`` for that packet, so the behaviour is defined in one place: Python.
 * The arithmetic below is Forwarder.advance's started branch, line for line; a test runs both
 * on the same random packet sequences.
 *
 * libsrtp is not linked: sfu.glue hands over the address of pylibsrtp's own srtp_protect
 * (libsrtp 2 signature, checked there) with set_protect(). For the AEAD (AES-GCM) profiles an
 * Egress may instead carry an AeadSession that protects with OpenSSL's libcrypto directly (built
 * when setup.py finds its headers: CLASSROOM_OPENSSL; see "AeadSession" below).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>

/* Forwarder.MAX_REORDER: a packet this far behind the newest is dropped (libsrtp refuses to
   protect an index older than its 128-packet window; the receiver has given up on it anyway). */
#define MAX_REORDER 100

typedef int (*srtp_protect_fn)(void *ctx, void *rtp_hdr, int *len_ptr);

static srtp_protect_fn protect_fn = NULL;

/* Room for one packet plus libsrtp's largest trailer (tag + MKI). One buffer serves every
 * send: protect works in place and the packet is sent before the next one is built. */
#define MAX_TRAILER 144
#define BUF_SIZE 4096
static unsigned char packet_buf[BUF_SIZE];

/* The batch for sendmmsg: BATCH_MAX packets of one socket, each with its own buffer (protect
 * works in place, and every copy must live until the kernel has it) and its subscriber. */
#define BATCH_MAX 64
static int batch_size = BATCH_MAX;
static unsigned char batch_buf[BATCH_MAX][BUF_SIZE];
static struct iovec batch_iov[BATCH_MAX];
static struct mmsghdr batch_msg[BATCH_MAX];
static struct Lane_s *batch_lane[BATCH_MAX];
static struct Egress_s *batch_egress[BATCH_MAX];
static int batch_n = 0;
static int batch_fd = -1;
static unsigned long long c_sendmmsg_calls = 0; /* sendmmsg() calls, since the module loaded */
static unsigned long long c_batched = 0;        /* datagrams handed over in them */

/* packets this loop sent itself (not through DownTrack.forward), since the module loaded */
static unsigned long long c_sent_total = 0;

/* ------------------------------------------------------------------------------- AeadSession */

/* Direct AES-GCM protect (RFC 7714) for the AEAD profiles aiortc negotiates first
 * (SRTP_AEAD_AES_256_GCM, then _128_GCM), instead of libsrtp's srtp_protect: libsrtp spends
 * ~0.5 us per call on work around the cipher (stream lookup, set_iv/set_aad through its
 * cipher abstraction, replay bit vector, key-usage limits) while the AES-GCM itself is ~0.1 us.
 *
 * One AeadSession belongs to one DTLS transport's send direction. It holds one EVP_CIPHER_CTX
 * keyed once with the session encryption key (sfu.srtp_kdf derives it and the 12-byte session
 * salt from the DTLS-SRTP master key and salt, RFC 3711 section 4.3 with RFC 7714 section 11);
 * per packet only the IV is set. The key is the same for every SSRC of the transport, so one
 * context serves all of its streams; each stream (SSRC) keeps only its packet index.
 *
 * The packet index (ROC << 16 | SEQ) is estimated as libsrtp's sender does (rdbx with
 * allow_repeat_tx and aiortc's 1024-packet window), so the output is byte-for-byte libsrtp's:
 * a newer sequence number advances the index, an older one within the window reuses its ROC
 * (a repair: same index, same bytes), and one older than the window is refused.
 *
 * ROC ownership: every RTP protect of a transport that has an AeadSession goes through it:
 * the C loop here, and sfu.glue.RawTransport's send_rtp/send_rtp_parts (NACK repairs, keyframe
 * replays, probes, the pacer) through AeadSession.protect/protect_parts. libsrtp's send session
 * then protects only RTCP (SRTCP has its own index), so there is one ROC per SSRC and nothing to
 * hand over between two implementations. */
#ifdef CLASSROOM_OPENSSL
#include <openssl/evp.h>

#define AEAD_TAG 16
#define AEAD_SALT 12
#define AEAD_WINDOW 1024 /* aiortc's tx_policy.window_size */
#define AEAD_MAX_STREAMS 4096

typedef struct {
    unsigned int ssrc;        /* host order */
    unsigned long long index; /* highest packet index protected (48 bits); 0 before the first */
} AeadStream;

typedef struct AeadSession_s {
    PyObject_HEAD
    EVP_CIPHER_CTX *ctx;
    unsigned char salt[AEAD_SALT];
    AeadStream *streams;
    int nstreams, cap;
    int last; /* the stream found last time: fan-out protects runs of one SSRC */
    unsigned long long protected_packets;
    unsigned long long errors;
} AeadSession;

static void AeadSession_dealloc(AeadSession *self) {
    EVP_CIPHER_CTX_free(self->ctx);
    PyMem_Free(self->streams);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int AeadSession_init(AeadSession *self, PyObject *args, PyObject *kwds) {
    const char *key, *salt;
    Py_ssize_t keylen, saltlen;
    if (!PyArg_ParseTuple(args, "y#y#:AeadSession", &key, &keylen, &salt, &saltlen)) {
        return -1;
    }
    const EVP_CIPHER *cipher = keylen == 32 ? EVP_aes_256_gcm() : keylen == 16 ? EVP_aes_128_gcm() : NULL;
    if (cipher == NULL || saltlen != AEAD_SALT) {
        PyErr_SetString(PyExc_ValueError, "AeadSession(key, salt): a 16- or 32-byte key and a 12-byte salt");
        return -1;
    }
    if (self->ctx == NULL) {
        self->ctx = EVP_CIPHER_CTX_new();
    }
    unsigned char iv[AEAD_SALT] = {0};
    if (self->ctx == NULL || EVP_EncryptInit_ex(self->ctx, cipher, NULL, (const unsigned char *)key, iv) != 1) {
        PyErr_SetString(PyExc_RuntimeError, "AeadSession: OpenSSL refused the AES-GCM key");
        return -1;
    }
    memcpy(self->salt, salt, AEAD_SALT);
    self->nstreams = 0;
    self->last = 0;
    return 0;
}

static AeadStream *aead_stream(AeadSession *s, unsigned int ssrc) {
    if (s->last < s->nstreams && s->streams[s->last].ssrc == ssrc) {
        return &s->streams[s->last];
    }
    for (int i = 0; i < s->nstreams; i++) {
        if (s->streams[i].ssrc == ssrc) {
            s->last = i;
            return &s->streams[i];
        }
    }
    if (s->nstreams == s->cap) { /* a new SSRC: libsrtp's ssrc_any_outbound makes a stream too */
        if (s->cap >= AEAD_MAX_STREAMS) {
            return NULL;
        }
        int cap = s->cap ? s->cap * 2 : 4;
        AeadStream *grown = PyMem_Realloc(s->streams, (size_t)cap * sizeof(AeadStream));
        if (grown == NULL) {
            return NULL;
        }
        s->streams = grown;
        s->cap = cap;
    }
    AeadStream *st = &s->streams[s->nstreams];
    st->ssrc = ssrc;
    st->index = 0;
    s->last = s->nstreams++;
    return st;
}

/* The index of sequence number ``seq`` against the highest so far, as libsrtp's
 * srtp_rdbx_estimate_index/srtp_index_guess; returns the distance (> 0: newer). */
static long aead_estimate(unsigned long long highest, unsigned int seq, unsigned long long *est) {
    if (highest <= 0x8000) { /* libsrtp: below the median the ROC is taken as 0 */
        *est = seq;
        return (long)seq - (long)(highest & 0xFFFF);
    }
    unsigned long long roc = highest >> 16;
    long local = (long)(highest & 0xFFFF);
    long diff = (long)seq - local;
    if (local < 0x8000) {
        if (diff > 0x8000) { /* from before the last wrap */
            roc -= 1;
            diff -= 0x10000;
        }
    } else if (local - 0x8000 > (long)seq) { /* after a wrap */
        roc += 1;
        diff += 0x10000;
    }
    *est = (roc << 16) | seq;
    return diff;
}

/* Protect the RTP packet at ``pkt`` (``*len`` bytes, room for 16 more) in place: 0 or -1. */
static int aead_protect(AeadSession *s, unsigned char *pkt, int *len) {
    int n = *len;
    if (n < 12 || (pkt[0] >> 6) != 2) {
        s->errors++;
        return -1;
    }
    /* the AAD is the header: 12 bytes, the CSRCs, and the header extension if X is set */
    int hlen = 12 + 4 * (pkt[0] & 0x0F);
    if ((pkt[0] & 0x10) && hlen + 4 <= n) {
        hlen += 4 + 4 * ((pkt[hlen + 2] << 8) | pkt[hlen + 3]);
    } else if (pkt[0] & 0x10) {
        hlen = n + 1;
    }
    if (hlen > n) {
        s->errors++;
        return -1;
    }
    unsigned int ssrc = ((unsigned int)pkt[8] << 24) | ((unsigned int)pkt[9] << 16) | ((unsigned int)pkt[10] << 8) | pkt[11];
    unsigned int seq = ((unsigned int)pkt[2] << 8) | pkt[3];
    AeadStream *st = aead_stream(s, ssrc);
    if (st == NULL) {
        s->errors++;
        return -1;
    }
    unsigned long long est;
    long delta = aead_estimate(st->index, seq, &est);
    if (delta > 0) {
        st->index = est;
    } else if (delta <= -AEAD_WINDOW) { /* libsrtp: replay_old, even with allow_repeat_tx */
        s->errors++;
        return -1;
    }
    /* RFC 7714 section 8.1: IV = (0x0000 || SSRC || ROC || SEQ) XOR the session salt */
    unsigned int roc = (unsigned int)(est >> 16);
    unsigned char iv[AEAD_SALT] = {0, 0, pkt[8], pkt[9], pkt[10], pkt[11],
                                   (unsigned char)(roc >> 24), (unsigned char)(roc >> 16),
                                   (unsigned char)(roc >> 8), (unsigned char)roc, pkt[2], pkt[3]};
    for (int i = 0; i < AEAD_SALT; i++) {
        iv[i] ^= s->salt[i];
    }
    int outl = 0;
    /* only the IV changes: the key schedule set in __init__ stays in the context */
    if (EVP_EncryptInit_ex(s->ctx, NULL, NULL, NULL, iv) != 1 ||
        EVP_EncryptUpdate(s->ctx, NULL, &outl, pkt, hlen) != 1 ||
        (n > hlen && EVP_EncryptUpdate(s->ctx, pkt + hlen, &outl, pkt + hlen, n - hlen) != 1) ||
        EVP_EncryptFinal_ex(s->ctx, pkt + n, &outl) != 1 ||
        EVP_CIPHER_CTX_ctrl(s->ctx, EVP_CTRL_GCM_GET_TAG, AEAD_TAG, pkt + n) != 1) {
        s->errors++;
        return -1;
    }
    *len = n + AEAD_TAG;
    s->protected_packets++;
    return 0;
}

/* protect(header [, payload]) -> bytes: one fresh bytes object, protected in place. */
static PyObject *aead_protect_py(AeadSession *self, const char *a, Py_ssize_t an, const char *b, Py_ssize_t bn) {
    if (an + bn > BUF_SIZE) {
        PyErr_SetString(PyExc_ValueError, "packet is too long");
        return NULL;
    }
    PyObject *out = PyBytes_FromStringAndSize(NULL, an + bn + AEAD_TAG);
    if (out == NULL) {
        return NULL;
    }
    unsigned char *p = (unsigned char *)PyBytes_AS_STRING(out);
    memcpy(p, a, (size_t)an);
    if (bn) {
        memcpy(p + an, b, (size_t)bn);
    }
    int len = (int)(an + bn);
    if (aead_protect(self, p, &len) != 0) {
        Py_DECREF(out);
        PyErr_SetString(PyExc_ValueError, "AES-GCM protect refused the packet (malformed, or older than the window)");
        return NULL;
    }
    return out;
}

static PyObject *AeadSession_protect(AeadSession *self, PyObject *arg) {
    if (!PyBytes_Check(arg)) {
        PyErr_SetString(PyExc_TypeError, "protect(): packet must be bytes");
        return NULL;
    }
    return aead_protect_py(self, PyBytes_AS_STRING(arg), PyBytes_GET_SIZE(arg), NULL, 0);
}

static PyObject *AeadSession_protect_parts(AeadSession *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2 || !PyBytes_Check(args[0]) || !PyBytes_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "protect_parts(header, payload): two bytes objects");
        return NULL;
    }
    return aead_protect_py(self, PyBytes_AS_STRING(args[0]), PyBytes_GET_SIZE(args[0]), PyBytes_AS_STRING(args[1]),
                           PyBytes_GET_SIZE(args[1]));
}

static PyObject *AeadSession_index(AeadSession *self, PyObject *arg) {
    unsigned long ssrc = PyLong_AsUnsignedLong(arg);
    if (PyErr_Occurred()) {
        return NULL;
    }
    for (int i = 0; i < self->nstreams; i++) {
        if (self->streams[i].ssrc == (unsigned int)ssrc) {
            return PyLong_FromUnsignedLongLong(self->streams[i].index);
        }
    }
    Py_RETURN_NONE;
}

static PyMethodDef AeadSession_methods[] = {
    {"protect", (PyCFunction)AeadSession_protect, METH_O, "protect(rtp) -> SRTP (AES-GCM, RFC 7714)"},
    {"protect_parts", (PyCFunction)(void (*)(void))AeadSession_protect_parts, METH_FASTCALL,
     "protect_parts(header, payload) -> SRTP of header + payload"},
    {"index", (PyCFunction)AeadSession_index, METH_O,
     "index(ssrc) -> the stream's highest packet index (ROC << 16 | SEQ), None before its first packet"},
    {NULL}};

static PyMemberDef AeadSession_members[] = {
    {"protected", T_ULONGLONG, offsetof(AeadSession, protected_packets), READONLY, "packets protected"},
    {"errors", T_ULONGLONG, offsetof(AeadSession, errors), READONLY, "packets refused"},
    {NULL}};

static PyTypeObject AeadSessionType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "sfu._fanout.AeadSession",
    .tp_doc = "AeadSession(session_key, session_salt): SRTP AES-GCM protect of one transport's RTP.",
    .tp_basicsize = sizeof(AeadSession),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)AeadSession_init,
    .tp_dealloc = (destructor)AeadSession_dealloc,
    .tp_methods = AeadSession_methods,
    .tp_members = AeadSession_members,
};
#endif

/* ---------------------------------------------------------------------------------- Egress */

/* Transport-wide congestion control (TWCC): when the subscriber negotiated the transport-cc
 * header extension, every video packet sent on its connection carries the next transport-wide
 * sequence number, and the connection remembers when it sent each one and how big it was, so
 * the receiver's feedback (arrival times per sequence number) can be turned into a send-side
 * estimate (sfu/bwe/twcc.py). The ring holds the last TWCC_RING packets; it is allocated only
 * for connections that negotiated the extension. */
#define TWCC_RING 8192
typedef struct {
    long long sent_us; /* CLOCK_MONOTONIC, microseconds */
    unsigned int size; /* RTP bytes (header + payload) */
    unsigned int seq;  /* the 16-bit sequence number this slot holds, to spot a stale slot */
    unsigned int ssrc; /* the RTP stream and sequence number of the packet (repairs after a loss */
    unsigned int rtp_seq; /* the feedback reports: DownTrack.on_lost) */
} TwccSlot;

typedef struct Egress_s {
    PyObject_HEAD
    int fd;         /* UDP socket (connected unless addrlen > 0); -1 while not usable */
    void *ctx;      /* libsrtp srtp_t */
    PyObject *keep; /* whatever owns fd and ctx; held while they are set */
    unsigned long long sent;
    unsigned long long send_errors;
    unsigned long long protect_errors;
    TwccSlot *twcc;              /* NULL: the connection does not number its packets */
    unsigned long long twcc_next; /* the next transport-wide sequence number (mod 2^16 on the wire) */
    struct sockaddr_storage addr; /* the subscriber, on a shared socket (sendmmsg's msg_name) */
    socklen_t addrlen;            /* 0: fd is connected to the subscriber (send()) */
    PyObject *aead;               /* an AeadSession: protect with it instead of libsrtp; NULL: libsrtp */
} Egress;

static long long monotonic_us(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t); /* what time.monotonic() reads on Linux */
    return (long long)t.tv_sec * 1000000LL + t.tv_nsec / 1000;
}

/* Take the connection's next transport-wide sequence number for a packet of ``size`` bytes
   sent at ``now_us`` (RTP stream ``ssrc``, sequence number ``rtp_seq``) and remember it. */
static unsigned int twcc_take(Egress *e, unsigned int size, long long now_us, unsigned int ssrc,
                              unsigned int rtp_seq) {
    unsigned int seq = (unsigned int)(e->twcc_next++ & 0xFFFF);
    TwccSlot *slot = &e->twcc[seq & (TWCC_RING - 1)];
    slot->sent_us = now_us;
    slot->size = size;
    slot->seq = seq;
    slot->ssrc = ssrc;
    slot->rtp_seq = rtp_seq;
    return seq;
}

static int Egress_traverse(Egress *self, visitproc visit, void *arg) {
    Py_VISIT(self->keep);
    Py_VISIT(self->aead);
    return 0;
}

static int Egress_clear_refs(Egress *self) {
    Py_CLEAR(self->keep);
    Py_CLEAR(self->aead);
    return 0;
}

static void Egress_dealloc(Egress *self) {
    PyObject_GC_UnTrack(self);
    Egress_clear_refs(self);
    PyMem_Free(self->twcc);
    self->twcc = NULL;
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *Egress_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
    Egress *self = (Egress *)type->tp_alloc(type, 0);
    if (self != NULL) {
        self->fd = -1;
    }
    return (PyObject *)self;
}

static PyObject *Egress_set(Egress *self, PyObject *args) {
    int fd;
    unsigned long long ctx;
    PyObject *keep;
    const char *name = NULL;
    Py_ssize_t namelen = 0;
    PyObject *aead = Py_None;
    if (!PyArg_ParseTuple(args, "iKO|y#O:set", &fd, &ctx, &keep, &name, &namelen, &aead)) {
        return NULL;
    }
#ifdef CLASSROOM_OPENSSL
    if (aead != Py_None && Py_TYPE(aead) != &AeadSessionType) {
        PyErr_SetString(PyExc_TypeError, "Egress.set: aead must be an AeadSession or None");
        return NULL;
    }
#else
    if (aead != Py_None) {
        PyErr_SetString(PyExc_TypeError, "Egress.set: built without OpenSSL, aead must be None");
        return NULL;
    }
#endif
    if (fd < 0 || ctx == 0) {
        PyErr_SetString(PyExc_ValueError, "Egress.set needs an open socket and a session");
        return NULL;
    }
    if (namelen < 0 || (size_t)namelen > sizeof(struct sockaddr_storage) ||
        (namelen > 0 && namelen < (Py_ssize_t)sizeof(struct sockaddr_in))) {
        PyErr_SetString(PyExc_ValueError, "Egress.set: the address must be a struct sockaddr_in or sockaddr_in6");
        return NULL;
    }
    Py_INCREF(keep);
    Py_XSETREF(self->keep, keep);
    self->fd = fd;
    self->ctx = (void *)(uintptr_t)ctx;
    memset(&self->addr, 0, sizeof(self->addr));
    if (namelen > 0) {
        memcpy(&self->addr, name, (size_t)namelen);
    }
    self->addrlen = (socklen_t)namelen;
    if (aead != Py_None) {
        Py_INCREF(aead);
        Py_XSETREF(self->aead, aead);
    } else {
        Py_CLEAR(self->aead);
    }
    Py_RETURN_NONE;
}

static PyObject *Egress_clear(Egress *self, PyObject *Py_UNUSED(ignored)) {
    /* The owner closes the socket only after this, so a reused descriptor number can never
     * receive another subscriber's packets. */
    self->fd = -1;
    self->ctx = NULL;
    self->addrlen = 0;
    Py_CLEAR(self->keep);
    Py_CLEAR(self->aead);
    Py_RETURN_NONE;
}

static PyObject *Egress_twcc_enable(Egress *self, PyObject *Py_UNUSED(ignored)) {
    if (self->twcc == NULL) {
        self->twcc = PyMem_Calloc(TWCC_RING, sizeof(TwccSlot));
        if (self->twcc == NULL) {
            return PyErr_NoMemory();
        }
        for (int i = 0; i < TWCC_RING; i++) {
            self->twcc[i].seq = 0x10000; /* matches no 16-bit number: nothing sent yet */
        }
    }
    Py_RETURN_NONE;
}

static PyObject *Egress_twcc_take(Egress *self, PyObject *args) {
    long size;
    unsigned long ssrc = 0, rtp_seq = 0;
    if (!PyArg_ParseTuple(args, "l|kk", &size, &ssrc, &rtp_seq)) {
        return NULL;
    }
    if (self->twcc == NULL) {
        PyErr_SetString(PyExc_ValueError, "transport-wide sequence numbers are not enabled");
        return NULL;
    }
    return PyLong_FromUnsignedLong(twcc_take(self, (unsigned int)size, monotonic_us(), (unsigned int)ssrc,
                                             (unsigned int)(rtp_seq & 0xFFFF)));
}

/* The slot that remembers transport-wide number ``arg``; NULL with no exception set: not
   remembered (or not numbering); NULL with one: ``arg`` is not an int. */
static TwccSlot *twcc_slot(Egress *self, PyObject *arg) {
    long seq = PyLong_AsLong(arg);
    if ((seq == -1 && PyErr_Occurred()) || self->twcc == NULL || seq < 0 || seq > 0xFFFF) {
        return NULL;
    }
    TwccSlot *slot = &self->twcc[seq & (TWCC_RING - 1)];
    return slot->seq == (unsigned int)seq ? slot : NULL;
}

static PyObject *Egress_twcc_packet(Egress *self, PyObject *arg) {
    TwccSlot *slot = twcc_slot(self, arg);
    if (slot == NULL) {
        if (PyErr_Occurred()) {
            return NULL;
        }
        Py_RETURN_NONE;
    }
    return Py_BuildValue("(II)", slot->ssrc, slot->rtp_seq);
}

static PyObject *Egress_twcc_sent(Egress *self, PyObject *arg) {
    TwccSlot *slot = twcc_slot(self, arg);
    if (slot == NULL) {
        if (PyErr_Occurred()) {
            return NULL;
        }
        Py_RETURN_NONE;
    }
    return Py_BuildValue("(dI)", (double)slot->sent_us * 1e-6, slot->size);
}

static PyMethodDef Egress_methods[] = {
    {"twcc_enable", (PyCFunction)Egress_twcc_enable, METH_NOARGS,
     "number this connection's video packets with transport-wide sequence numbers (idempotent)"},
    {"twcc_take", (PyCFunction)Egress_twcc_take, METH_VARARGS,
     "twcc_take(size, ssrc=0, rtp_seq=0) -> the next transport-wide sequence number, remembered as sent "
     "now (with the RTP stream and sequence number of the packet)"},
    {"twcc_packet", (PyCFunction)Egress_twcc_packet, METH_O,
     "twcc_packet(seq) -> (ssrc, rtp_seq) of the packet sent with that number, or None if not remembered"},
    {"twcc_sent", (PyCFunction)Egress_twcc_sent, METH_O,
     "twcc_sent(seq) -> (time.monotonic() when sent, bytes), or None if not remembered"},
    {"set", (PyCFunction)Egress_set, METH_VARARGS,
     "set(fd, srtp_ctx_address, keep, address=b'', aead=None): send on this socket with this session; address "
     "(a struct sockaddr_in/_in6, sfu.demux.sockaddr_bytes): the subscriber on a shared socket "
     "(batched sendmmsg), empty: the socket is connected to it (send()); aead: an AeadSession that "
     "protects instead of libsrtp (it must then protect every RTP packet of the session)"},
    {"clear", (PyCFunction)Egress_clear, METH_NOARGS, "not usable (until the next set)"},
    {NULL}};

static PyMemberDef Egress_members[] = {
    {"fd", T_INT, offsetof(Egress, fd), READONLY, "the socket, -1 when not usable"},
    {"sent", T_ULONGLONG, offsetof(Egress, sent), READONLY, "packets sent by the C loop"},
    {"send_errors", T_ULONGLONG, offsetof(Egress, send_errors), READONLY, "copies the kernel refused"},
    {"batched", T_UINT, offsetof(Egress, addrlen), READONLY,
     "length of the subscriber's address when sent through the shared socket (sendmmsg), 0: connected"},
    {"protect_errors", T_ULONGLONG, offsetof(Egress, protect_errors), READONLY, "srtp_protect failures"},
    {"aead", T_OBJECT, offsetof(Egress, aead), READONLY, "the AeadSession that protects, or None (libsrtp)"},
    {"twcc_next", T_ULONGLONG, offsetof(Egress, twcc_next), READONLY,
     "transport-wide sequence numbers taken so far"},
    {NULL}};

static PyTypeObject EgressType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "sfu._fanout.Egress",
    .tp_doc = "One subscriber transport's send side for the C fan-out loop.",
    .tp_basicsize = sizeof(Egress),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_new = Egress_new,
    .tp_dealloc = (destructor)Egress_dealloc,
    .tp_traverse = (traverseproc)Egress_traverse,
    .tp_clear = (inquiry)Egress_clear_refs,
    .tp_methods = Egress_methods,
    .tp_members = Egress_members,
};

/* ------------------------------------------------------------------------------------ Lane */

typedef struct Lane_s {
    PyObject_HEAD
    PyObject *egress; /* Egress or None */
    PyObject *source; /* Forwarder.source */
    int clock_rate;
    char is_video;
    char started;
    char paused;
    long long seq_offset;
    long long ts_offset;
    long long first_in_seq;
    long long highest_in_seq;
    long long ext_first;
    long long ext_highest;
    long long last_out_seq;
    long long last_out_ts;
    long long last_out_ms; /* -1: nothing sent yet */
    long long dropped_waiting;
    long long out_seq;
    long long out_ts;
    /* VP8 (sfu/vp8.py, Forwarder.advance_vp8): picture id / TL0PICIDX continuity, temporal layers */
    char vp8;
    long long pid_offset;
    long long tl0_offset;
    long long last_in_pid;
    long long last_out_pid;
    long long last_out_tl0;
    long long drop_pid;
    long long max_tid;
    long long target_tid;
    long long out_pid;
    long long out_tl0;
    long long dropped_temporal;
    /* the DownTrack's */
    unsigned int ssrc;
    int payload_type;
    int abs_send_time_id; /* the subscriber's extension id for abs-send-time, 0: none */
    int twcc_id;          /* the subscriber's extension id for transport-cc, 0: none */
    long long packets;
    long long octets;
    double first_sent_at;
} Lane;

static int Lane_traverse(Lane *self, visitproc visit, void *arg) {
    Py_VISIT(self->egress);
    Py_VISIT(self->source);
    return 0;
}

static int Lane_clear(Lane *self) {
    Py_CLEAR(self->egress);
    Py_CLEAR(self->source);
    return 0;
}

static void Lane_dealloc(Lane *self) {
    PyObject_GC_UnTrack(self);
    Lane_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *Lane_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
    Lane *self = (Lane *)type->tp_alloc(type, 0);
    if (self != NULL) {
        self->last_out_ms = -1;
    }
    return (PyObject *)self;
}

#define LL(name, doc) {#name, T_LONGLONG, offsetof(Lane, name), 0, doc}
static PyMemberDef Lane_members[] = {
    {"egress", T_OBJECT, offsetof(Lane, egress), 0, "the subscriber transport's Egress, or None"},
    {"source", T_OBJECT, offsetof(Lane, source), 0, "the source being forwarded"},
    {"clock_rate", T_INT, offsetof(Lane, clock_rate), 0, NULL},
    {"is_video", T_BOOL, offsetof(Lane, is_video), 0, NULL},
    {"started", T_BOOL, offsetof(Lane, started), 0, NULL},
    {"paused", T_BOOL, offsetof(Lane, paused), 0, NULL},
    LL(seq_offset, NULL),
    LL(ts_offset, NULL),
    LL(first_in_seq, NULL),
    LL(highest_in_seq, NULL),
    LL(ext_first, NULL),
    LL(ext_highest, NULL),
    LL(last_out_seq, NULL),
    LL(last_out_ts, NULL),
    LL(last_out_ms, "arrival time (ms) of the last packet sent; -1 before the first"),
    LL(dropped_waiting, NULL),
    LL(out_seq, NULL),
    LL(out_ts, NULL),
    {"vp8", T_BOOL, offsetof(Lane, vp8), 0, "rewrite the VP8 descriptor's picture id and TL0PICIDX"},
    LL(pid_offset, NULL),
    LL(tl0_offset, NULL),
    LL(last_in_pid, NULL),
    LL(last_out_pid, NULL),
    LL(last_out_tl0, NULL),
    LL(drop_pid, NULL),
    LL(max_tid, "temporal layers forwarded now (TID <= max_tid)"),
    LL(target_tid, "temporal layers wanted"),
    LL(out_pid, NULL),
    LL(out_tl0, NULL),
    LL(dropped_temporal, "packets of frames above the temporal target not sent"),
    {"ssrc", T_UINT, offsetof(Lane, ssrc), 0, "the subscriber's SSRC for this stream"},
    {"payload_type", T_INT, offsetof(Lane, payload_type), 0, NULL},
    {"abs_send_time_id", T_INT, offsetof(Lane, abs_send_time_id), 0,
     "header extension id of abs-send-time for this subscriber (0: no extension)"},
    {"twcc_id", T_INT, offsetof(Lane, twcc_id), 0,
     "header extension id of transport-cc for this subscriber (0: no extension)"},
    LL(packets, "RTP packets sent"),
    LL(octets, "payload octets sent"),
    {"first_sent_at", T_DOUBLE, offsetof(Lane, first_sent_at), 0, "time.monotonic() of the first send"},
    {NULL}};
#undef LL

static PyTypeObject LaneType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "sfu._fanout.Lane",
    .tp_doc = "Per-subscriber state shared by the Python Forwarder/DownTrack and the C loop.",
    .tp_basicsize = sizeof(Lane),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_new = Lane_new,
    .tp_dealloc = (destructor)Lane_dealloc,
    .tp_traverse = (traverseproc)Lane_traverse,
    .tp_clear = (inquiry)Lane_clear,
    .tp_members = Lane_members,
};

/* ---------------------------------------------------------------------------------- fanout */

static PyObject *str_forward = NULL;

/* The VP8 payload descriptor fields a lane rewrites or filters on: sfu/vp8.py's parse(). */
typedef struct {
    int pid;      /* picture id, -1: absent */
    int pid_mask; /* 0x7F or 0x7FFF */
    int pid_pos;
    int tl0;      /* TL0PICIDX, -1: absent */
    int tl0_pos;
    int tid;      /* -1: absent */
} Vp8Desc;

static void parse_vp8(const unsigned char *p, Py_ssize_t n, Vp8Desc *d) {
    d->pid = d->tl0 = d->tid = -1;
    d->pid_mask = 0x7FFF;
    d->pid_pos = d->tl0_pos = 0;
    if (n < 2 || !(p[0] & 0x80)) {
        return; /* no X byte: no picture id, TL0PICIDX or TID */
    }
    unsigned char x = p[1];
    Py_ssize_t pos = 2;
    int pid = -1, pid_mask = 0x7FFF, pid_pos = 0, tl0 = -1, tl0_pos = 0, tid = -1;
    if (x & 0x80) { /* I */
        if (pos >= n) return;
        pid_pos = (int)pos;
        if (p[pos] & 0x80) {
            if (pos + 1 >= n) return;
            pid = ((p[pos] & 0x7F) << 8) | p[pos + 1];
            pos += 2;
        } else {
            pid = p[pos];
            pid_mask = 0x7F;
            pos += 1;
        }
    }
    if (x & 0x40) { /* L */
        if (pos >= n) return;
        tl0 = p[pos];
        tl0_pos = (int)pos;
        pos += 1;
    }
    if (x & 0x20) { /* T */
        if (pos >= n) return;
        tid = p[pos] >> 6;
    }
    d->pid = pid;
    d->pid_mask = pid_mask;
    d->pid_pos = pid_pos;
    d->tl0 = tl0;
    d->tl0_pos = tl0_pos;
    d->tid = tid;
}

static double monotonic_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t); /* what time.monotonic() reads on Linux */
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* What one fanout() call has done so far. */
typedef struct {
    unsigned long long sent, dropped, c_sent;
    double now;       /* time.monotonic(), read once, for a lane's first packet */
    Py_ssize_t plen;  /* the payload's length (every copy of this packet has it) */
} Tally;

/* A copy reached the kernel: the lane's counters, as DownTrack.forward keeps them. */
static void copy_sent(Lane *l, Egress *e, Tally *t) {
    e->sent++;
    if (l->packets == 0) {
        if (t->now == 0.0) {
            t->now = monotonic_now();
        }
        l->first_sent_at = t->now;
    }
    l->packets++;
    l->octets += t->plen;
    t->sent++;
    t->c_sent++;
}

/* A copy the kernel refused: lost for this subscriber, whose video goes on from the next
 * keyframe (as RawTransport does); audio just goes on. */
static void copy_refused(Lane *l, Egress *e, Tally *t) {
    e->send_errors++;
    t->dropped++;
    if (l->is_video && l->packets) {
        l->started = 0;
    }
}

/* Hand the batch to the kernel: sendmmsg() sends from the first message on and returns how
 * many it sent; it stops at the first one it cannot send, which the next call reports. */
static void batch_flush(Tally *t) {
    int i = 0;
    while (i < batch_n) {
        int r = sendmmsg(batch_fd, &batch_msg[i], (unsigned int)(batch_n - i), MSG_DONTWAIT);
        c_sendmmsg_calls++;
        if (r > 0) {
            for (int k = i; k < i + r; k++) {
                copy_sent(batch_lane[k], batch_egress[k], t);
            }
            c_batched += (unsigned long long)r;
            i += r;
            continue;
        }
        int err = errno;
        if (r < 0 && err == EINTR) {
            continue;
        }
        /* a full buffer refuses the rest of the batch as well; another error, this copy only */
        int end = (err == EAGAIN || err == EWOULDBLOCK || err == ENOBUFS) ? batch_n : i + 1;
        for (int k = i; k < end; k++) {
            copy_refused(batch_lane[k], batch_egress[k], t);
        }
        i = end;
    }
    batch_n = 0;
    batch_fd = -1;
}

PyDoc_STRVAR(fanout_doc,
"fanout(downs, lanes, payload, marker, seq, ts, arrival_ms, keyframe) -> int\n\n"
"Send one packet to every DownTrack in ``downs`` (``lanes[i]`` is ``downs[i].fwd``).\n"
"Returns ``sent | dropped << 32``: packets sent, and sends the kernel refused.");

static PyObject *fanout(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 8) {
        PyErr_SetString(PyExc_TypeError, "fanout() takes 8 arguments");
        return NULL;
    }
    PyObject *downs = args[0], *lanes = args[1], *payload = args[2];
    if (!PyTuple_Check(downs) || !PyTuple_Check(lanes) || PyTuple_GET_SIZE(downs) != PyTuple_GET_SIZE(lanes)) {
        PyErr_SetString(PyExc_TypeError, "fanout(): downs and lanes must be tuples of one length");
        return NULL;
    }
    if (!PyBytes_Check(payload)) {
        PyErr_SetString(PyExc_TypeError, "fanout(): payload must be bytes");
        return NULL;
    }
    long marker = PyLong_AsLong(args[3]);
    long seq = PyLong_AsLong(args[4]);
    long long ts = PyLong_AsLongLong(args[5]);
    long long arrival_ms = PyLong_AsLongLong(args[6]);
    if (PyErr_Occurred()) {
        return NULL;
    }
    const char *data = PyBytes_AS_STRING(payload);
    Py_ssize_t plen = PyBytes_GET_SIZE(payload);
    int fits = protect_fn != NULL && 24 + plen + MAX_TRAILER <= BUF_SIZE;
    Tally t = {0, 0, 0, 0.0, plen};
    /* abs-send-time (24 bits, 6.18 fixed-point seconds) from the packet's arrival: when the SFU
       sent it, to within the fan-out's own time; the same for every subscriber of this packet. */
    unsigned long long ast = ((unsigned long long)arrival_ms << 18) / 1000ULL;
    long long now_us = 0; /* read once, for the first lane that numbers its packets */
    Vp8Desc d = {-1, 0x7FFF, 0, -1, 0, -1};
    int vp8_parsed = 0; /* the descriptor is read once per packet, for the first VP8 lane */

    Py_ssize_t n = PyTuple_GET_SIZE(lanes);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *obj = PyTuple_GET_ITEM(lanes, i);
        if (!PyObject_TypeCheck(obj, &LaneType)) {
            batch_flush(&t);
            PyErr_SetString(PyExc_TypeError, "fanout(): lanes must hold Lane objects");
            return NULL;
        }
        Lane *l = (Lane *)obj;
        Egress *e = (l->egress != NULL && Py_TYPE(l->egress) == &EgressType) ? (Egress *)l->egress : NULL;
        int steady = fits && e != NULL && e->fd >= 0 && l->started && !l->paused;
        if (steady && l->vp8) {
            if (!vp8_parsed) {
                parse_vp8((const unsigned char *)data, plen, &d);
                vp8_parsed = 1;
            }
            /* a frame above the temporal target (dropped), or a target not yet taken: Python */
            if (d.tid >= 0 && (d.tid > l->max_tid || l->target_tid != l->max_tid)) {
                steady = 0;
            }
        }
        if (!steady) {
            /* Not the steady state: the DownTrack's Python forward() decides. What is batched
               goes out first: Python may change or clear any Egress. */
            batch_flush(&t);
            PyObject *r = PyObject_CallMethodObjArgs(PyTuple_GET_ITEM(downs, i), str_forward, payload, args[3],
                                                     args[4], args[5], args[6], args[7], NULL);
            if (r == NULL) {
                return NULL;
            }
            unsigned long long one = PyLong_AsUnsignedLongLongMask(r);
            Py_DECREF(r);
            if (one == (unsigned long long)-1 && PyErr_Occurred()) {
                return NULL;
            }
            t.sent += one;
            continue;
        }
        /* Forwarder.advance, started branch: the signed 16-bit distance to the newest packet. */
        long long delta = ((seq - l->highest_in_seq + 0x8000) & 0xFFFF) - 0x8000;
        if (delta <= 0 && (l->ext_highest + delta < l->ext_first || delta < -MAX_REORDER)) {
            /* older than where this source started (or than the last padding probe, which took
               the next number), or than SRTP's replay window */
            continue;
        }
        long long out_seq = (seq + l->seq_offset) & 0xFFFF;
        long long out_ts = (ts + l->ts_offset) & 0xFFFFFFFFLL;
        l->out_seq = out_seq;
        l->out_ts = out_ts;
        if (delta > 0) {
            l->ext_highest += delta;
            l->highest_in_seq = seq;
            l->last_out_seq = out_seq;
            l->last_out_ts = out_ts;
            l->last_out_ms = arrival_ms;
        }
        if (l->vp8) { /* Forwarder.advance_vp8, after advance */
            if (d.pid >= 0) {
                l->out_pid = (d.pid + l->pid_offset) & d.pid_mask;
            }
            if (d.tl0 >= 0) {
                l->out_tl0 = (d.tl0 + l->tl0_offset) & 0xFF;
            }
            if (delta > 0) {
                l->last_in_pid = d.pid;
                if (d.pid >= 0) {
                    l->last_out_pid = l->out_pid;
                }
                if (d.tl0 >= 0) {
                    l->last_out_tl0 = l->out_tl0;
                }
            }
        }
        /* Where this copy is built: the next slot of the batch on a shared socket (after sending
           a batch of another socket: a node with several ICE addresses), else the one buffer. */
        unsigned char *h = packet_buf;
        if (e->addrlen) {
            if (batch_n && batch_fd != e->fd) {
                batch_flush(&t);
            }
            h = batch_buf[batch_n];
        }
        /* The subscriber's header: V=2, no padding/extension/CSRC; its PT, SSRC, seq, ts. */
        h[0] = 0x80;
        h[1] = (unsigned char)((marker & 0x80) | (l->payload_type & 0x7F));
        h[2] = (unsigned char)(out_seq >> 8);
        h[3] = (unsigned char)out_seq;
        h[4] = (unsigned char)(out_ts >> 24);
        h[5] = (unsigned char)(out_ts >> 16);
        h[6] = (unsigned char)(out_ts >> 8);
        h[7] = (unsigned char)out_ts;
        h[8] = (unsigned char)(l->ssrc >> 24);
        h[9] = (unsigned char)(l->ssrc >> 16);
        h[10] = (unsigned char)(l->ssrc >> 8);
        h[11] = (unsigned char)l->ssrc;
        int hlen = 12;
        int twcc = l->twcc_id && e->twcc != NULL;
        if (l->abs_send_time_id || twcc) {
            /* X bit, one-byte header extensions (RFC 8285): 0xBEDE, then abs-send-time (id/len
               2, 3 bytes) and/or transport-cc (id/len 1, 2 bytes, then a 0 padding byte) */
            h[0] = 0x90;
            h[12] = 0xBE;
            h[13] = 0xDE;
            h[14] = 0x00;
            h[15] = (unsigned char)((l->abs_send_time_id ? 1 : 0) + (twcc ? 1 : 0));
            hlen = 16;
            if (l->abs_send_time_id) {
                h[16] = (unsigned char)((l->abs_send_time_id << 4) | 2);
                h[17] = (unsigned char)(ast >> 16);
                h[18] = (unsigned char)(ast >> 8);
                h[19] = (unsigned char)ast;
                hlen = 20;
            }
            if (twcc) {
                if (now_us == 0) {
                    now_us = monotonic_us();
                }
                unsigned int tseq = twcc_take(e, (unsigned int)(hlen + 4 + plen), now_us, (unsigned int)l->ssrc,
                                              (unsigned int)out_seq);
                h[hlen] = (unsigned char)((l->twcc_id << 4) | 1);
                h[hlen + 1] = (unsigned char)(tseq >> 8);
                h[hlen + 2] = (unsigned char)tseq;
                h[hlen + 3] = 0;
                hlen += 4;
            }
        }
        /* srtp_protect encrypts in place, so every lane copies the payload afresh */
        memcpy(h + hlen, data, (size_t)plen);
        if (l->vp8) { /* the subscriber's picture id and TL0PICIDX (sfu/vp8.py rewrite) */
            unsigned char *pl = h + hlen;
            if (d.pid >= 0) {
                if (d.pid_mask == 0x7FFF) {
                    pl[d.pid_pos] = (unsigned char)(0x80 | ((l->out_pid >> 8) & 0x7F));
                    pl[d.pid_pos + 1] = (unsigned char)l->out_pid;
                } else {
                    pl[d.pid_pos] = (unsigned char)(l->out_pid & 0x7F);
                }
            }
            if (d.tl0 >= 0) {
                pl[d.tl0_pos] = (unsigned char)l->out_tl0;
            }
        }
        int len = (int)(hlen + plen);
#ifdef CLASSROOM_OPENSSL
        int rc = e->aead != NULL ? aead_protect((AeadSession *)e->aead, h, &len) : protect_fn(e->ctx, h, &len);
#else
        int rc = protect_fn(e->ctx, h, &len);
#endif
        if (rc != 0) {
            e->protect_errors++;
            continue;
        }
        if (e->addrlen) { /* the shared socket: into the batch, to the subscriber's address */
            int k = batch_n++;
            batch_iov[k].iov_base = h;
            batch_iov[k].iov_len = (size_t)len;
            memset(&batch_msg[k].msg_hdr, 0, sizeof(struct msghdr));
            batch_msg[k].msg_hdr.msg_name = &e->addr;
            batch_msg[k].msg_hdr.msg_namelen = e->addrlen;
            batch_msg[k].msg_hdr.msg_iov = &batch_iov[k];
            batch_msg[k].msg_hdr.msg_iovlen = 1;
            batch_lane[k] = l;
            batch_egress[k] = e;
            batch_fd = e->fd;
            if (batch_n >= batch_size) {
                batch_flush(&t);
            }
            continue;
        }
        /* a connected socket of its own (media.udp_mux: false): at once */
        if (send(e->fd, h, (size_t)len, MSG_DONTWAIT) < 0) {
            copy_refused(l, e, &t);
            continue;
        }
        copy_sent(l, e, &t);
    }
    batch_flush(&t);
    c_sent_total += t.c_sent;
    return PyLong_FromUnsignedLongLong(t.sent | (t.dropped << 32));
}

static PyObject *c_forwarded(PyObject *module, PyObject *Py_UNUSED(ignored)) {
    return PyLong_FromUnsignedLongLong(c_sent_total);
}

static PyObject *batch_stats(PyObject *module, PyObject *Py_UNUSED(ignored)) {
    return Py_BuildValue("(KK)", c_sendmmsg_calls, c_batched);
}

static PyObject *set_batch_size(PyObject *module, PyObject *arg) {
    long n = PyLong_AsLong(arg);
    if (n == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (n < 1 || n > BATCH_MAX) {
        PyErr_Format(PyExc_ValueError, "the batch size must be 1..%d", BATCH_MAX);
        return NULL;
    }
    batch_size = (int)n;
    Py_RETURN_NONE;
}

static PyObject *set_protect(PyObject *module, PyObject *arg) {
    unsigned long long addr = PyLong_AsUnsignedLongLong(arg);
    if (PyErr_Occurred()) {
        return NULL;
    }
    protect_fn = (srtp_protect_fn)(uintptr_t)addr;
    Py_RETURN_NONE;
}

static PyMethodDef module_methods[] = {
    {"fanout", (PyCFunction)(void (*)(void))fanout, METH_FASTCALL, fanout_doc},
    {"c_forwarded", (PyCFunction)c_forwarded, METH_NOARGS, "packets the C loop has sent since the module loaded"},
    {"batch_stats", (PyCFunction)batch_stats, METH_NOARGS,
     "batch_stats() -> (sendmmsg calls, datagrams sent in them) since the module loaded"},
    {"set_batch_size", (PyCFunction)set_batch_size, METH_O,
     "set_batch_size(n): copies per sendmmsg on a shared socket, 1..64 (default 64)"},
    {"set_protect", (PyCFunction)set_protect, METH_O,
     "set_protect(address): libsrtp's srtp_protect(srtp_t, void *, int *); 0 turns the C path off"},
    {NULL}};

static struct PyModuleDef fanout_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "sfu._fanout",
    .m_doc = "The SFU's per-packet fan-out loop in C (see sfu/_fanout.c).",
    .m_size = -1,
    .m_methods = module_methods,
};

PyMODINIT_FUNC PyInit__fanout(void) {
    if (PyType_Ready(&EgressType) < 0 || PyType_Ready(&LaneType) < 0) {
        return NULL;
    }
#ifdef CLASSROOM_OPENSSL
    if (PyType_Ready(&AeadSessionType) < 0) {
        return NULL;
    }
#endif
    str_forward = PyUnicode_InternFromString("forward");
    if (str_forward == NULL) {
        return NULL;
    }
    PyObject *m = PyModule_Create(&fanout_module);
    if (m == NULL) {
        return NULL;
    }
    Py_INCREF(&EgressType);
    Py_INCREF(&LaneType);
    if (PyModule_AddObject(m, "Egress", (PyObject *)&EgressType) < 0 ||
        PyModule_AddObject(m, "Lane", (PyObject *)&LaneType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
#ifdef CLASSROOM_OPENSSL
    Py_INCREF(&AeadSessionType);
    if (PyModule_AddObject(m, "AeadSession", (PyObject *)&AeadSessionType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
#endif
    return m;
}
