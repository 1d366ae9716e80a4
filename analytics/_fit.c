/* analytics/_fit.c: the inner step of the between-room fit (analytics/origin.py, _aligned) in C.
 *
 * For each of B's blocks: A's window ``lags`` samples before it (plus/minus ``spread``), A's
 * samples zeroed where ``keep`` is 0, the shift whose dot product with B's block is highest, that
 * shifted row and its normalised correlation. numpy did it with a (rows, shifts, block) einsum
 * over strided views and gathers of rows; here it is one pass over each row with all the shifts'
 * sums at once, no temporaries. Sums are in double (numpy's float32 einsum rounds differently;
 * the chosen shifts are the same but for exact ties). */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SHIFTS 257

PyDoc_STRVAR(aligned_doc,
             "aligned(a, keep, pad, rb, starts, lags, spread, nb, quiet, rows_out, r_out, /) -> None\n\n"
             "a: float32 padded waveform; keep: uint8 per sample of a, or None; rb: float32 (m, block)\n"
             "C-contiguous; starts, lags: int64 (m); nb: float64 (m); rows_out: float32 (m, block);\n"
             "r_out: float64 (m). The same arithmetic as origin._aligned.");

static int get(PyObject *obj, Py_buffer *view, const char *format, Py_ssize_t itemsize, int writable) {
    if (PyObject_GetBuffer(obj, view, (writable ? PyBUF_WRITABLE : 0) | PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0)
        return -1;
    if (view->itemsize != itemsize || view->format == NULL || strchr(format, view->format[0]) == NULL) {
        PyBuffer_Release(view);
        PyErr_Format(PyExc_TypeError, "expected a contiguous array of '%s'", format);
        return -1;
    }
    return 0;
}

static PyObject *aligned(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    Py_buffer va = {0}, vk = {0}, vb = {0}, vs = {0}, vl = {0}, vn = {0}, vo = {0}, vr = {0};
    int have_keep = 0, ok = 0;
    Py_ssize_t pad, spread, m, block, width, n, i, t, k;
    double quiet;
    (void)module;
    if (nargs != 11) {
        PyErr_SetString(PyExc_TypeError, "aligned() takes 11 arguments");
        return NULL;
    }
    pad = PyLong_AsSsize_t(args[2]);
    spread = PyLong_AsSsize_t(args[6]);
    quiet = PyFloat_AsDouble(args[8]);
    if (PyErr_Occurred())
        return NULL;
    if (spread < 0 || 2 * spread + 1 > MAX_SHIFTS) {
        PyErr_SetString(PyExc_ValueError, "spread out of range");
        return NULL;
    }
    if (get(args[0], &va, "f", 4, 0) < 0)
        return NULL;
    if (args[1] != Py_None) {
        if (get(args[1], &vk, "?bB", 1, 0) < 0)
            goto done;
        have_keep = 1;
    }
    if (get(args[3], &vb, "f", 4, 0) < 0 || get(args[4], &vs, "ql", 8, 0) < 0 || get(args[5], &vl, "ql", 8, 0) < 0 ||
        get(args[7], &vn, "d", 8, 0) < 0 || get(args[9], &vo, "f", 4, 1) < 0 || get(args[10], &vr, "d", 8, 1) < 0)
        goto done;
    n = va.len / 4;
    m = vs.len / 8;
    if (vb.ndim != 2 || vb.shape[0] != m || vl.len / 8 != m || vn.len / 8 != m || vo.len != vb.len || vr.len / 8 != m ||
        (have_keep && vk.len != n)) {
        PyErr_SetString(PyExc_ValueError, "array shapes do not match");
        goto done;
    }
    block = vb.shape[1];
    width = block + 2 * spread;
    if (n < width) {
        PyErr_SetString(PyExc_ValueError, "waveform shorter than a window");
        goto done;
    }
    {
        const float *a = (const float *)va.buf;
        const unsigned char *keep = (const unsigned char *)vk.buf;
        const float *rb = (const float *)vb.buf;
        const int64_t *starts = (const int64_t *)vs.buf, *lags = (const int64_t *)vl.buf;
        const double *nb = (const double *)vn.buf;
        float *rows_out = (float *)vo.buf;
        double *r_out = (double *)vr.buf;
        float *win = malloc(sizeof(float) * (size_t)width);
        double sums[MAX_SHIFTS];
        Py_ssize_t shifts = 2 * spread + 1;
        if (win == NULL) {
            PyErr_NoMemory();
            goto done;
        }
        Py_BEGIN_ALLOW_THREADS
        for (i = 0; i < m; i++) {
            long long s = (long long)starts[i] - lags[i] - spread + pad;
            const float *src;
            const float *row = rb + i * block;
            double na = 0.0;
            Py_ssize_t best = 0;
            if (s < 0)
                s = 0;
            if (s > (long long)(n - width))
                s = (long long)(n - width);
            src = a + s;
            if (have_keep) {
                for (t = 0; t < width; t++)
                    win[t] = keep[s + t] ? src[t] : 0.0f;
            } else {
                memcpy(win, src, sizeof(float) * (size_t)width);
            }
            for (k = 0; k < shifts; k++) {
                /* eight independent float lanes (vectorised without reassociating a sum),
                 * added in double at the end */
                const float *w = win + k;
                float lane[8] = {0, 0, 0, 0, 0, 0, 0, 0};
                double sum = 0.0;
                int j;
                for (t = 0; t + 8 <= block; t += 8)
                    for (j = 0; j < 8; j++)
                        lane[j] += w[t + j] * row[t + j];
                for (; t < block; t++)
                    sum += (double)w[t] * row[t];
                for (j = 0; j < 8; j++)
                    sum += lane[j];
                sums[k] = sum;
            }
            for (k = 1; k < shifts; k++)
                if (sums[k] > sums[best])
                    best = k;
            for (t = 0; t < block; t++) {
                double c = win[spread + t];
                na += c * c;
            }
            na = sqrt(na) + quiet * sqrt((double)block);
            memcpy(rows_out + i * block, win + best, sizeof(float) * (size_t)block);
            r_out[i] = (double)(float)sums[best] / (na * nb[i]);
        }
        Py_END_ALLOW_THREADS
        free(win);
    }
    ok = 1;
done:
    if (va.obj) PyBuffer_Release(&va);
    if (vk.obj) PyBuffer_Release(&vk);
    if (vb.obj) PyBuffer_Release(&vb);
    if (vs.obj) PyBuffer_Release(&vs);
    if (vl.obj) PyBuffer_Release(&vl);
    if (vn.obj) PyBuffer_Release(&vn);
    if (vo.obj) PyBuffer_Release(&vo);
    if (vr.obj) PyBuffer_Release(&vr);
    if (!ok)
        return NULL;
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"aligned", (PyCFunction)(void (*)(void))aligned, METH_FASTCALL, aligned_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "analytics._fit", "The between-room fit's per-block shift search in C.", -1, methods,
};

PyMODINIT_FUNC PyInit__fit(void) { return PyModule_Create(&module); }
