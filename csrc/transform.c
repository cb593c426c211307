/*
 * transform.c -- the XFRM section: feature transforms applied to raw input rows before the
 * payload (trees or MLP) reads them: imputation of NaN, standardization or affine scaling,
 * and column selection/reordering. The section is small, so it is always decoded into an
 * owned array at load; applying it allocates nothing.
 *
 * Each model column is computed in float64 with the same operations scikit-learn applies
 * (StandardScaler: (x - mean) / scale; MinMaxScaler: x * scale + min), then rounded once to
 * float32, exactly as scikit-learn's trees round their float64 input.
 */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "astore_internal.h"

static astore_status column_fail(const astore_section *section, uint32_t column,
                                 astore_status status, const char *problem, astore_error *err) {
    return astore_fail(err, status, section->offset, "XFRM column %u: %s", (unsigned)column,
                       problem);
}

/* The 64-byte header, and where the column records lie. */
static astore_status read_header(const astore_section *section, astore_cursor *cursor,
                                 astore_xfrm_header *h, astore_error *err) {
    if (!astore_read_u32(cursor, &h->n_inputs) || !astore_read_u32(cursor, &h->n_columns) ||
        !astore_read_u32(cursor, &h->columns_offset) || !astore_read_u32(cursor, &h->flags) ||
        !astore_read_bytes(cursor, h->reserved, sizeof h->reserved)) {
        return astore_fail(err, ASTORE_ERR_FORMAT, section->offset,
                           "XFRM section is %llu bytes, shorter than its 64-byte header",
                           (unsigned long long)section->length);
    }
    if (h->flags != 0) {
        return astore_fail(err, ASTORE_ERR_VERSION, section->offset + 12,
                           "XFRM flags 0x%x unknown (written by a newer version?)",
                           (unsigned)h->flags);
    }
    if (!astore_all_zero(h->reserved, sizeof h->reserved)) {
        return astore_fail(err, ASTORE_ERR_FORMAT, section->offset + 16,
                           "XFRM reserved header bytes are not zero");
    }
    if (h->n_inputs == 0 || h->n_columns == 0) {
        return astore_fail(err, ASTORE_ERR_FORMAT, section->offset,
                           "XFRM header: %u inputs, %u columns", (unsigned)h->n_inputs,
                           (unsigned)h->n_columns);
    }
    if (h->n_columns > ASTORE_XFRM_MAX_COLUMNS || h->n_inputs > ASTORE_XFRM_MAX_INPUTS) {
        return astore_fail(err, ASTORE_ERR_UNSUPPORTED, section->offset,
                           "XFRM has %u inputs and %u columns; this reader takes at most %u "
                           "and %u",
                           (unsigned)h->n_inputs, (unsigned)h->n_columns,
                           (unsigned)ASTORE_XFRM_MAX_INPUTS, (unsigned)ASTORE_XFRM_MAX_COLUMNS);
    }
    uint64_t bytes = 32u * (uint64_t)h->n_columns;
    if (h->columns_offset % ASTORE_ALIGN != 0 || h->columns_offset < sizeof(astore_xfrm_header) ||
        h->columns_offset > section->length || bytes > section->length - h->columns_offset) {
        return astore_fail(err, ASTORE_ERR_FORMAT, section->offset + 8,
                           "XFRM column array [%u, +%llu) lies outside the %llu-byte section "
                           "or is misaligned",
                           (unsigned)h->columns_offset, (unsigned long long)bytes,
                           (unsigned long long)section->length);
    }
    if (h->columns_offset != sizeof(astore_xfrm_header) ||
        section->length != sizeof(astore_xfrm_header) + bytes) {
        return astore_fail(err, ASTORE_ERR_FORMAT, section->offset + 8,
                           "XFRM is not canonical: its column records start at %u and the "
                           "section is %llu bytes, not 64 and %llu",
                           (unsigned)h->columns_offset, (unsigned long long)section->length,
                           (unsigned long long)(sizeof(astore_xfrm_header) + bytes));
    }
    return ASTORE_OK;
}

/* Column record j, checked: its source input, operation and parameters. */
static astore_status read_column(const astore_section *section, const uint8_t *body,
                                 const astore_xfrm_header *h, uint32_t j,
                                 astore_xfrm_column *c, astore_error *err) {
    astore_cursor at = astore_cursor_make(body + h->columns_offset + 32u * j, 32,
                                          section->offset + h->columns_offset + 32u * j);
    bool ok = astore_read_u32(&at, &c->source) && astore_read_u32(&at, &c->op) &&
              astore_read_f64(&at, &c->impute) && astore_read_f64(&at, &c->a) &&
              astore_read_f64(&at, &c->b);
    (void)ok; /* the array lies inside the section (checked by read_header) */
    uint32_t scaling = c->op & ASTORE_XFRM_SCALE_MASK;
    const char *problem = NULL;
    astore_status status = ASTORE_ERR_FORMAT;
    if (c->source >= h->n_inputs) {
        problem = "source column out of range";
    } else if ((c->op & ~(ASTORE_XFRM_SCALE_MASK | ASTORE_XFRM_IMPUTE)) != 0 ||
               scaling > ASTORE_XFRM_SCALE_AFFINE) {
        problem = "unknown operation";
        status = ASTORE_ERR_UNSUPPORTED;
    } else if ((c->op & ASTORE_XFRM_IMPUTE) ? !isfinite(c->impute) : c->impute != 0.0 ||
                                                                          signbit(c->impute)) {
        problem = "imputation value must be finite, and +0 without imputation";
    } else if (scaling == ASTORE_XFRM_SCALE_NONE
                   ? (c->a != 0.0 || c->b != 0.0 || signbit(c->a) || signbit(c->b))
                   : (!isfinite(c->a) || !isfinite(c->b) ||
                      (scaling == ASTORE_XFRM_SCALE_STANDARDIZE && c->b == 0.0))) {
        problem = "scaling parameters are not finite, zero divisor, or non-zero without "
                  "scaling";
    }
    if (problem != NULL) return column_fail(section, j, status, problem, err);
    return ASTORE_OK;
}

astore_status astore_transform_load(const astore_container *container,
                                    const astore_section *section, astore_transform *xf,
                                    astore_error *err) {
    memset(xf, 0, sizeof *xf);
    const uint8_t *body = container->data + section->offset;
    astore_cursor cursor = astore_cursor_make(body, (size_t)section->length, section->offset);
    astore_xfrm_header h;
    astore_status status = read_header(section, &cursor, &h, err);
    if (status != ASTORE_OK) return status;
    xf->columns = malloc(sizeof(astore_xfrm_column) * h.n_columns);
    if (xf->columns == NULL) {
        return astore_fail(err, ASTORE_ERR_NOMEM, ASTORE_NO_OFFSET, "out of memory");
    }
    for (uint32_t j = 0; j < h.n_columns; j++) {
        status = read_column(section, body, &h, j, &xf->columns[j], err);
        if (status != ASTORE_OK) {
            astore_transform_release(xf);
            return status;
        }
    }
    xf->n_inputs = h.n_inputs;
    xf->n_columns = h.n_columns;
    return ASTORE_OK;
}

void astore_transform_release(astore_transform *xf) {
    free(xf->columns);
    xf->columns = NULL;
}

/* float64 -> float32, round to nearest even, overflowing to +-inf as IEEE 754 says (a plain
 * C conversion of an out-of-range value is undefined behaviour). */
static inline float narrow(double v) {
    const double overflow = 0x1.ffffffp127; /* halfway between FLT_MAX and 2^128 */
    if (v >= overflow) return INFINITY;
    if (v <= -overflow) return -INFINITY;
    return (float)v;
}

void astore_transform_rows(const astore_transform *xf, const float *x, size_t n_rows,
                           float *out) {
    const size_t n_in = xf->n_inputs, n_columns = xf->n_columns;
    for (size_t j = 0; j < n_columns; j++) {
        const astore_xfrm_column c = xf->columns[j];
        const uint32_t scaling = c.op & ASTORE_XFRM_SCALE_MASK;
        const bool impute = (c.op & ASTORE_XFRM_IMPUTE) != 0;
        const float *source = x + c.source;
        float *target = out + j;
        for (size_t r = 0; r < n_rows; r++) {
            double v = source[r * n_in];
            if (impute && v != v) v = c.impute;
            if (scaling == ASTORE_XFRM_SCALE_STANDARDIZE) {
                v = (v - c.a) / c.b;
            } else if (scaling == ASTORE_XFRM_SCALE_AFFINE) {
                v = v * c.a + c.b;
            }
            target[r * n_columns] = narrow(v);
        }
    }
}
