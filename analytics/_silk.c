/* Opus decoding for the analysis without the CELT layer of hybrid packets.
 *
 * The analysis needs audio up to 4 kHz (8-kHz output). A hybrid Opus packet (what browsers send
 * for speech at 24-40 kb/s) holds a SILK layer coded at 16 kHz (0-8 kHz) and a CELT layer for
 * 8-20 kHz; libopus' opus_decode() always decodes both, and at 8-kHz output the CELT layer's
 * contribution is exactly zero (its bands start above the output's Nyquist frequency) while it
 * costs about a third of the decoding time. This module decodes SILK-only and hybrid packets
 * with libopus' own SILK decoder (silk_Decode, the function opus_decode() calls) and skips the
 * CELT layer; for a CELT-only packet it returns CELT_ONLY and the caller decodes it with
 * opus_decode() (libopus' CELT objects cannot be linked into a shared object from Debian's
 * non-PIC static library: celt.o refers to stderr).
 *
 * silk_Decode, silk_InitDecoder, silk_Get_Decoder_Size and ec_dec_init are not part of libopus'
 * public API: they are linked from the static library (Debian: libopus-dev, libopus.a) and
 * declared here with the signatures of libopus 1.3.x. Everything that depends on them is in this
 * file; tests/unit/analytics/test_silk.py checks the contract (bit-exact output against
 * opus_decode() on SILK-only packets, equal output on hybrid packets).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>

/* libopus internals (silk/control.h, silk/API.h, celt/entdec.h of libopus 1.3.x) */
typedef struct {
    int32_t nChannelsAPI;
    int32_t nChannelsInternal;
    int32_t API_sampleRate;
    int32_t internalSampleRate;
    int payloadSize_ms;
    int prevPitchLag;
    int reserved[16]; /* room for fields later versions add */
} silk_dec_control;

extern int silk_Get_Decoder_Size(int *size);
extern int silk_InitDecoder(void *state);
extern int silk_Decode(void *state, silk_dec_control *control, int lost, int new_packet, void *range_dec,
                       int16_t *out, int32_t *n_out, int arch);
extern void ec_dec_init(void *range_dec, unsigned char *buf, uint32_t storage);
/* run-time CPU detection of libopus builds with RTCD (x86: SSE/AVX variants, bit-exact) */
extern int opus_select_arch(void) __attribute__((weak));

/* libopus' assertion handler (celt/celt.c), which its range decoder refers to. Defined here so
 * that celt.o is not linked: Debian's static library is built without -fPIC and celt.o's
 * reference to stderr cannot go into a shared object. Same behaviour: message, then abort. */
__attribute__((visibility("hidden"))) void celt_fatal(const char *str, const char *file, int line);
__attribute__((visibility("hidden"))) void celt_fatal(const char *str, const char *file, int line) {
    fprintf(stderr, "Fatal (internal) error in %s, line %d: %s\n", file, line, str);
    abort();
}

#define MAX_SAMPLES 5760 /* 120 ms at 48 kHz */
#define MODE_SILK 1
#define MODE_HYBRID 2
#define MODE_CELT 3
#define CELT_ONLY (-1000) /* not a libopus error code */
#define OPUS_INVALID_PACKET (-4) /* libopus' error codes */
#define OPUS_INTERNAL_ERROR (-3)

typedef struct {
    PyObject_HEAD
    void *silk;
    silk_dec_control control;
    int rate;
    int prev_mode;
    int prev_frame_ms;
    int arch;
    uint64_t range_dec[32]; /* an ec_dec (48 bytes in 1.3.x), aligned, with room to spare */
    int16_t scratch[MAX_SAMPLES];
} Decoder;

static void reset_state(Decoder *self) {
    silk_InitDecoder(self->silk);
    self->prev_mode = 0;
    self->prev_frame_ms = 20;
}

static int Decoder_init(Decoder *self, PyObject *args, PyObject *kwds) {
    static char *keywords[] = {"rate", NULL};
    int rate = 8000, size = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|i", keywords, &rate))
        return -1;
    if (rate != 8000 && rate != 12000 && rate != 16000 && rate != 24000 && rate != 48000) {
        PyErr_Format(PyExc_ValueError, "unsupported Opus output rate %d", rate);
        return -1;
    }
    if (self->silk == NULL) {
        if (silk_Get_Decoder_Size(&size) != 0 || size <= 0) {
            PyErr_SetString(PyExc_RuntimeError, "silk_Get_Decoder_Size failed");
            return -1;
        }
        self->silk = PyMem_Calloc(1, (size_t)size);
        if (self->silk == NULL) {
            PyErr_NoMemory();
            return -1;
        }
    }
    self->rate = rate;
    self->arch = opus_select_arch ? opus_select_arch() : 0;
    memset(&self->control, 0, sizeof(self->control));
    self->control.nChannelsAPI = 1;
    self->control.nChannelsInternal = 1;
    self->control.API_sampleRate = rate;
    self->control.internalSampleRate = 16000;
    self->control.payloadSize_ms = 20;
    reset_state(self);
    return 0;
}

static void Decoder_dealloc(Decoder *self) {
    if (self->silk)
        PyMem_Free(self->silk);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* One frame's size coded in 1 or 2 bytes (RFC 6716, 3.2.1); returns bytes used or -1. */
static int frame_size(const unsigned char *p, int len, int *size) {
    if (len < 1)
        return -1;
    if (p[0] < 252) {
        *size = p[0];
        return 1;
    }
    if (len < 2)
        return -1;
    *size = 4 * p[1] + p[0];
    return 2;
}

/* The frames of an Opus packet (RFC 6716, 3.2); returns their number or -1 if malformed. */
static int parse_packet(const unsigned char *data, int len, const unsigned char **frames, int *sizes) {
    const unsigned char *p = data + 1;
    int left = len - 1, code = data[0] & 3, count, i, used, pad = 0;
    if (code == 0) {
        frames[0] = p;
        sizes[0] = left;
        return 1;
    }
    if (code == 1) {
        if (left & 1)
            return -1;
        frames[0] = p;
        frames[1] = p + left / 2;
        sizes[0] = sizes[1] = left / 2;
        return 2;
    }
    if (code == 2) {
        used = frame_size(p, left, &sizes[0]);
        if (used < 0 || sizes[0] > left - used)
            return -1;
        frames[0] = p + used;
        frames[1] = p + used + sizes[0];
        sizes[1] = left - used - sizes[0];
        return 2;
    }
    if (left < 1)
        return -1;
    count = p[0] & 63;
    if (count < 1 || count > 48)
        return -1;
    {
        int vbr = p[0] & 128, padded = p[0] & 64;
        p++;
        left--;
        if (padded) {
            int b;
            do {
                if (left < 1)
                    return -1;
                b = *p++;
                left--;
                pad += b == 255 ? 254 : b;
            } while (b == 255);
        }
        left -= pad;
        if (left < 0)
            return -1;
        if (vbr) {
            int sum = 0;
            for (i = 0; i < count - 1; i++) {
                used = frame_size(p, left, &sizes[i]);
                if (used < 0)
                    return -1;
                p += used;
                left -= used;
                sum += sizes[i];
            }
            if (sum > left)
                return -1;
            sizes[count - 1] = left - sum;
        } else {
            if (left % count)
                return -1;
            for (i = 0; i < count; i++)
                sizes[i] = left / count;
        }
        for (i = 0; i < count; i++) {
            frames[i] = p;
            p += sizes[i];
        }
    }
    return count;
}

/* Samples per frame at ``rate`` from the TOC byte (RFC 6716, 3.1). */
static int samples_per_frame(unsigned char toc, int rate) {
    int config = toc >> 3;
    static const int silk_ms_x2[4] = {20, 40, 80, 120}; /* 10, 20, 40, 60 ms */
    if (config < 12)
        return rate / 2000 * silk_ms_x2[config & 3];
    if (config < 16)
        return rate / 2000 * silk_ms_x2[config & 1]; /* hybrid: 10 or 20 ms */
    return (rate / 400) << (config & 3); /* CELT: 2.5, 5, 10, 20 ms */
}

/* Decode one packet into pcm (room for MAX_SAMPLES); returns samples or a negative error. */
static int decode_packet(Decoder *self, const unsigned char *data, int len, int16_t *pcm) {
    const unsigned char *frames[48];
    int sizes[48];
    unsigned char toc;
    int count, config, mode, per_frame, frame_ms, i, total = 0;
    if (len < 1)
        return OPUS_INVALID_PACKET;
    config = data[0] >> 3;
    mode = config < 12 ? MODE_SILK : (config < 16 ? MODE_HYBRID : MODE_CELT);
    if (mode == MODE_CELT) {
        self->prev_mode = MODE_CELT;
        return CELT_ONLY;
    }
    toc = data[0];
    count = parse_packet(data, len, frames, sizes);
    if (count < 0)
        return OPUS_INVALID_PACKET;
    per_frame = samples_per_frame(toc, self->rate);
    if (per_frame <= 0 || count * per_frame > MAX_SAMPLES)
        return OPUS_INVALID_PACKET;
    frame_ms = per_frame * 1000 / self->rate;
    if (self->prev_mode == MODE_CELT)
        silk_InitDecoder(self->silk);
    self->control.nChannelsInternal = (toc & 4) ? 2 : 1;
    if (mode == MODE_HYBRID || config >= 8)
        self->control.internalSampleRate = 16000;
    else
        self->control.internalSampleRate = config < 4 ? 8000 : 12000;
    for (i = 0; i < count; i++) {
        int lost = sizes[i] <= 1; /* an empty frame: concealment, as opus_decode() does */
        int done = 0;
        self->control.payloadSize_ms = lost ? (self->prev_frame_ms > 10 ? self->prev_frame_ms : 10) : frame_ms;
        if (!lost)
            ec_dec_init(self->range_dec, (unsigned char *)frames[i], (uint32_t)sizes[i]);
        else
            ec_dec_init(self->range_dec, NULL, 0);
        do {
            int32_t n = 0;
            if (silk_Decode(self->silk, &self->control, lost, done == 0, self->range_dec, pcm + total + done, &n,
                            self->arch)) {
                if (!lost)
                    return OPUS_INTERNAL_ERROR;
                n = per_frame - done;
                memset(pcm + total + done, 0, sizeof(int16_t) * (size_t)n);
            }
            if (n <= 0)
                return OPUS_INTERNAL_ERROR;
            done += n;
        } while (done < per_frame);
        total += per_frame;
    }
    self->prev_mode = mode;
    self->prev_frame_ms = frame_ms;
    return total;
}

PyDoc_STRVAR(decode_doc,
             "decode(packet: bytes, out: writable int16 buffer, offset: int) -> int\n\n"
             "Decode one Opus packet; its samples are written to out[offset:], clipped to the buffer.\n"
             "Returns the packet's number of samples (also those outside the buffer), CELT_ONLY for a\n"
             "CELT-only packet (not decoded: use opus_decode), another negative number on a corrupt\n"
             "packet (libopus error code; nothing is written).");

static PyObject *Decoder_decode(Decoder *self, PyObject *const *args, Py_ssize_t nargs) {
    Py_buffer packet, out;
    Py_ssize_t offset, length;
    int n;
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "decode(packet, out, offset) takes 3 arguments");
        return NULL;
    }
    offset = PyLong_AsSsize_t(args[2]);
    if (offset == -1 && PyErr_Occurred())
        return NULL;
    if (PyObject_GetBuffer(args[0], &packet, PyBUF_SIMPLE) < 0)
        return NULL;
    if (PyObject_GetBuffer(args[1], &out, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS) < 0) {
        PyBuffer_Release(&packet);
        return NULL;
    }
    if (packet.len > 0x7fffffff || out.itemsize != 2) {
        PyBuffer_Release(&packet);
        PyBuffer_Release(&out);
        PyErr_SetString(PyExc_ValueError, "out must be an int16 buffer and the packet < 2 GiB");
        return NULL;
    }
    length = out.len / 2;
    Py_BEGIN_ALLOW_THREADS
    if (offset >= 0 && offset + MAX_SAMPLES <= length) {
        n = decode_packet(self, packet.buf, (int)packet.len, (int16_t *)out.buf + offset);
    } else {
        n = decode_packet(self, packet.buf, (int)packet.len, self->scratch);
        if (n > 0) {
            Py_ssize_t lo = offset > 0 ? offset : 0, hi = offset + n < length ? offset + n : length;
            if (hi > lo)
                memcpy((int16_t *)out.buf + lo, self->scratch + (lo - offset), sizeof(int16_t) * (size_t)(hi - lo));
        }
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&packet);
    PyBuffer_Release(&out);
    return PyLong_FromLong(n);
}

static int append_range(PyObject *list, long long a, long long b) {
    PyObject *item = Py_BuildValue("(LL)", a, b);
    int rc;
    if (item == NULL)
        return -1;
    rc = PyList_Append(list, item);
    Py_DECREF(item);
    return rc;
}

static long long clip_ll(long long x, long long lo, long long hi) { return x < lo ? lo : (x > hi ? hi : x); }

PyDoc_STRVAR(place_doc,
             "place(packets, stamps, wanted, out, start, time_base, gap) -> tuple | None\n\n"
             "Decode a file's packets onto the lesson timeline in ``out`` (int16): packet i goes to\n"
             "start + round((stamps[i] - stamps[0]) * time_base * rate) when that is more than ``gap`` samples past\n"
             "the previous packet's end (a gap), else right after it; a packet with ``wanted[i]`` false is\n"
             "not decoded (a voiceless stretch: the decoder is reset before the next decoded one).\n"
             "Returns (cursor, written, overflow, bad, covered, quiet) — covered and quiet are lists of\n"
             "[start, end) sample ranges — or None, before decoding anything, when a packet is CELT-only\n"
             "(the caller decodes such files packet by packet). analytics.audio._decode_opus is the same\n"
             "loop in Python.");

static PyObject *Decoder_place(Decoder *self, PyObject *const *args, Py_ssize_t nargs) {
    PyObject *packets, *stamps, *covered = NULL, *quiet = NULL, *result = NULL;
    Py_buffer wanted, out;
    long long start, gap, total, cursor = 0, t0 = 0, written = 0, overflow = 0, bad = 0;
    long long run_start = -1, quiet_start = -1;
    int have_cursor = 0, have_t0 = 0, skipping = 0;
    double tb;
    Py_ssize_t i, count;
    if (nargs != 7) {
        PyErr_SetString(PyExc_TypeError, "place() takes 7 arguments");
        return NULL;
    }
    packets = args[0];
    stamps = args[1];
    if (!PyList_Check(packets) || !PyList_Check(stamps) || PyList_GET_SIZE(packets) != PyList_GET_SIZE(stamps)) {
        PyErr_SetString(PyExc_TypeError, "packets and stamps must be lists of the same length");
        return NULL;
    }
    start = PyLong_AsLongLong(args[4]);
    tb = PyFloat_AsDouble(args[5]);
    gap = PyLong_AsLongLong(args[6]);
    if (PyErr_Occurred())
        return NULL;
    count = PyList_GET_SIZE(packets);
    for (i = 0; i < count; i++) {
        PyObject *p = PyList_GET_ITEM(packets, i);
        if (!PyBytes_Check(p)) {
            PyErr_SetString(PyExc_TypeError, "packets must be bytes");
            return NULL;
        }
        if (PyBytes_GET_SIZE(p) > 0 && ((unsigned char)PyBytes_AS_STRING(p)[0] >> 3) >= 16)
            Py_RETURN_NONE;
    }
    if (PyObject_GetBuffer(args[2], &wanted, PyBUF_SIMPLE) < 0)
        return NULL;
    if (PyObject_GetBuffer(args[3], &out, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS) < 0) {
        PyBuffer_Release(&wanted);
        return NULL;
    }
    if (wanted.len != count || out.itemsize != 2) {
        PyErr_SetString(PyExc_ValueError, "wanted must hold one byte per packet and out be int16");
        goto done;
    }
    covered = PyList_New(0);
    quiet = PyList_New(0);
    if (covered == NULL || quiet == NULL)
        goto done;
    total = out.len / 2;
    for (i = 0; i < count; i++) {
        PyObject *p = PyList_GET_ITEM(packets, i), *pts = PyList_GET_ITEM(stamps, i);
        const unsigned char *data = (const unsigned char *)PyBytes_AS_STRING(p);
        int len = (int)PyBytes_GET_SIZE(p);
        long long n;
        if (pts != Py_None && tb != 0.0) {
            long long stamp = PyLong_AsLongLong(pts), expected;
            if (stamp == -1 && PyErr_Occurred())
                goto done;
            if (!have_t0) {
                t0 = stamp;
                have_t0 = 1;
            }
            /* the same float operations, in the same order, as the Python loop */
            expected = start + (long long)nearbyint((double)(stamp - t0) * tb * (double)self->rate);
            if (!have_cursor || expected - cursor > gap) {
                if (have_cursor && run_start >= 0) {
                    if (append_range(covered, run_start, cursor < total ? cursor : total) < 0)
                        goto done;
                    run_start = -1;
                }
                cursor = expected;
                have_cursor = 1;
            }
        } else if (!have_cursor) {
            cursor = start;
            have_cursor = 1;
        }
        if (!((unsigned char *)wanted.buf)[i]) {
            int config = len > 0 ? data[0] >> 3 : 0;
            static const int silk_ms[4] = {10, 20, 40, 60};
            n = (long long)(config < 12 ? silk_ms[config & 3] : (config & 1 ? 20 : 10)) * self->rate / 1000;
            if (!skipping) {
                skipping = 1;
                quiet_start = cursor > 0 ? cursor : 0;
            }
        } else {
            if (skipping) {
                skipping = 0;
                if (append_range(quiet, quiet_start, clip_ll(cursor, 0, total)) < 0)
                    goto done;
                reset_state(self);
            }
            Py_BEGIN_ALLOW_THREADS
            if (cursor >= 0 && cursor + MAX_SAMPLES <= total) {
                n = decode_packet(self, data, len, (int16_t *)out.buf + cursor);
            } else {
                n = decode_packet(self, data, len, self->scratch);
                if (n > 0) {
                    long long lo = cursor > 0 ? cursor : 0, hi = cursor + n < total ? cursor + n : total;
                    if (hi > lo)
                        memcpy((int16_t *)out.buf + lo, self->scratch + (lo - cursor), sizeof(int16_t) * (size_t)(hi - lo));
                }
            }
            Py_END_ALLOW_THREADS
            if (n < 0) {
                bad++;
                continue;
            }
            {
                long long lo = cursor > 0 ? cursor : 0, hi = cursor + n < total ? cursor + n : total;
                overflow += n - (hi > lo ? hi - lo : 0);
            }
        }
        if (run_start < 0 && cursor + n > 0 && cursor < total)
            run_start = cursor > 0 ? cursor : 0;
        cursor += n;
        written += n;
    }
    if (have_cursor) {
        if (run_start >= 0 && append_range(covered, run_start, cursor < total ? cursor : total) < 0)
            goto done;
        if (skipping && append_range(quiet, quiet_start, clip_ll(cursor, 0, total)) < 0)
            goto done;
        result = Py_BuildValue("(LLLLOO)", cursor, written, overflow, bad, covered, quiet);
    } else {
        result = Py_BuildValue("(OLLLOO)", Py_None, written, overflow, bad, covered, quiet);
    }
done:
    Py_XDECREF(covered);
    Py_XDECREF(quiet);
    PyBuffer_Release(&wanted);
    PyBuffer_Release(&out);
    return result;
}

static PyObject *Decoder_reset(Decoder *self, PyObject *unused) {
    reset_state(self);
    Py_RETURN_NONE;
}

static PyMethodDef Decoder_methods[] = {
    {"decode", (PyCFunction)(void (*)(void))Decoder_decode, METH_FASTCALL, decode_doc},
    {"place", (PyCFunction)(void (*)(void))Decoder_place, METH_FASTCALL, place_doc},
    {"reset", (PyCFunction)Decoder_reset, METH_NOARGS, "Forget the decoder's state (as after a gap)."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject DecoderType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "analytics._silk.Decoder",
    .tp_basicsize = sizeof(Decoder),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Decoder(rate=8000): mono Opus decoder that skips the CELT layer of hybrid packets.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Decoder_init,
    .tp_dealloc = (destructor)Decoder_dealloc,
    .tp_methods = Decoder_methods,
};

/* ---- WebM/Matroska block reader (the demux PyAV's packet objects cost ~2.5 us per packet) ---- */

/* An EBML variable-length integer at p (at most 8 bytes, inside [p, end)); returns its length or
 * 0 if malformed / past the end. With is_id the marker bits are kept (element IDs). An all-ones
 * size ("unknown size") is reported as UINT64_MAX. */
static int ebml_vint(const unsigned char *p, const unsigned char *end, int is_id, uint64_t *value) {
    int len = 1;
    unsigned char mask = 0x80;
    uint64_t v;
    int i, all_ones;
    if (p >= end)
        return 0;
    while (len <= 8 && !(p[0] & mask)) {
        mask >>= 1;
        len++;
    }
    if (len > 8 || p + len > end || (is_id && len > 4))
        return 0;
    v = is_id ? p[0] : (uint64_t)(p[0] & (mask - 1));
    all_ones = (p[0] & (mask - 1)) == (mask - 1);
    for (i = 1; i < len; i++) {
        v = (v << 8) | p[i];
        all_ones = all_ones && p[i] == 0xFF;
    }
    *value = (!is_id && all_ones) ? UINT64_MAX : v;
    return len;
}

#define EBML_SEGMENT 0x18538067u
#define EBML_CLUSTER 0x1F43B675u
#define EBML_INFO 0x1549A966u
#define EBML_TIMECODE_SCALE 0x2AD7B1u
#define EBML_CLUSTER_TIMECODE 0xE7u
#define EBML_BLOCK_GROUP 0xA0u
#define EBML_BLOCK 0xA1u
#define EBML_SIMPLE_BLOCK 0xA3u
#define EBML_TRACKS 0x1654AE6Bu
#define EBML_TRACK_ENTRY 0xAEu
#define EBML_TRACK_NUMBER 0xD7u
#define EBML_CODEC_DELAY 0x56AAu

PyDoc_STRVAR(webm_blocks_doc,
             "webm_blocks(data, index, /) -> (packets, stamps, timecode_scale_ns, tracks) or None\n\n"
             "The frames of the index-th track (TrackEntry order, as PyAV numbers its streams) of a\n"
             "WebM/Matroska file in file order, each with its time in timecode-scale units (the\n"
             "stream time base PyAV gives); tracks is the number of TrackEntry elements. None when\n"
             "the file holds\n"
             "something this reader does not handle (laced blocks, elements of unknown size other\n"
             "than Segment and Cluster, a truncated or malformed element): read it with PyAV.");

static PyObject *webm_blocks(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    Py_buffer view;
    long index, track = -1;
    int entries = 0;
    const unsigned char *p, *end;
    uint64_t scale = 1000000, cluster_tc = 0, codec_delay = 0;
    int have_cluster_tc = 0;
    PyObject *packets = NULL, *stamps = NULL, *result = NULL;
    (void)module;
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "webm_blocks(data, track)");
        return NULL;
    }
    index = PyLong_AsLong(args[1]);
    if (index == -1 && PyErr_Occurred())
        return NULL;
    if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0)
        return NULL;
    packets = PyList_New(0);
    stamps = PyList_New(0);
    if (packets == NULL || stamps == NULL)
        goto done;
    p = (const unsigned char *)view.buf;
    end = p + view.len;
    while (p < end) {
        uint64_t id, size;
        int n = ebml_vint(p, end, 1, &id), m;
        if (n == 0)
            goto unsupported;
        m = ebml_vint(p + n, end, 0, &size);
        if (m == 0)
            goto unsupported;
        p += n + m;
        if (id == EBML_SEGMENT || id == EBML_CLUSTER || id == EBML_INFO || id == EBML_BLOCK_GROUP ||
            id == EBML_TRACKS || id == EBML_TRACK_ENTRY) {
            /* descend: their children follow (this flat walk needs no end for them) */
            if (id == EBML_CLUSTER)
                have_cluster_tc = 0;
            else if (id == EBML_TRACK_ENTRY)
                entries++;
            if (size != UINT64_MAX && size > (uint64_t)(end - p))
                goto unsupported; /* truncated */
            continue;
        }
        if (size == UINT64_MAX || size > (uint64_t)(end - p))
            goto unsupported;
        if (id == EBML_TIMECODE_SCALE || id == EBML_CLUSTER_TIMECODE || id == EBML_TRACK_NUMBER ||
            id == EBML_CODEC_DELAY) {
            uint64_t v = 0;
            uint64_t i;
            if (size > 8)
                goto unsupported;
            for (i = 0; i < size; i++)
                v = (v << 8) | p[i];
            if (id == EBML_TIMECODE_SCALE)
                scale = v;
            else if (id == EBML_TRACK_NUMBER) {
                if (entries - 1 == index)
                    track = (long)v;
            } else if (id == EBML_CODEC_DELAY) {
                if (entries - 1 == index)
                    codec_delay = v;
            }
            else {
                cluster_tc = v;
                have_cluster_tc = 1;
            }
        } else if (id == EBML_SIMPLE_BLOCK || id == EBML_BLOCK) {
            uint64_t number;
            int k = ebml_vint(p, p + size, 0, &number);
            int16_t rel;
            unsigned char flags;
            const unsigned char *frame;
            Py_ssize_t frame_len;
            if (k == 0 || (uint64_t)k + 3 > size || track < 0)
                goto unsupported;
            if ((long)number == track) {
                PyObject *b, *t;
                rel = (int16_t)((p[k] << 8) | p[k + 1]);
                flags = p[k + 2];
                if (flags & 0x06 || !have_cluster_tc) /* laced, or a block before its cluster's time */
                    goto unsupported;
                frame = p + k + 3;
                frame_len = (Py_ssize_t)(size - (uint64_t)k - 3);
                if (frame_len > 0) {
                    b = PyBytes_FromStringAndSize((const char *)frame, frame_len);
                    if (b == NULL)
                        goto done;
                    if (PyList_Append(packets, b) < 0) {
                        Py_DECREF(b);
                        goto done;
                    }
                    Py_DECREF(b);
                    /* FFmpeg's demuxer shifts the times back by the codec delay (ns, rounded to
                     * the nearest tick): the same stamps as PyAV's packets */
                    t = PyLong_FromLongLong((long long)cluster_tc + rel -
                                            (long long)((codec_delay + scale / 2) / (scale ? scale : 1)));
                    if (t == NULL)
                        goto done;
                    if (PyList_Append(stamps, t) < 0) {
                        Py_DECREF(t);
                        goto done;
                    }
                    Py_DECREF(t);
                }
            }
        }
        p += size;
    }
    result = Py_BuildValue("(OOKi)", packets, stamps, (unsigned long long)scale, entries);
    goto done;
unsupported:
    result = Py_None;
    Py_INCREF(result);
done:
    Py_XDECREF(packets);
    Py_XDECREF(stamps);
    PyBuffer_Release(&view);
    return result;
}

static PyMethodDef module_methods[] = {
    {"webm_blocks", (PyCFunction)(void (*)(void))webm_blocks, METH_FASTCALL, webm_blocks_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "analytics._silk",
    "Opus decoding without the CELT layer of hybrid packets (libopus' SILK decoder).", -1, module_methods,
};

PyMODINIT_FUNC PyInit__silk(void) {
    PyObject *m;
    if (PyType_Ready(&DecoderType) < 0)
        return NULL;
    m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    Py_INCREF(&DecoderType);
    if (PyModule_AddObject(m, "Decoder", (PyObject *)&DecoderType) < 0) {
        Py_DECREF(&DecoderType);
        Py_DECREF(m);
        return NULL;
    }
    if (PyModule_AddIntConstant(m, "CELT_ONLY", CELT_ONLY) < 0 ||
        PyModule_AddIntConstant(m, "MAX_SAMPLES", MAX_SAMPLES) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
