/*
 * mlp_kernel.h -- the MLP scoring kernel, written once and instantiated by mlp.c for each
 * vector width (no include guard: mlp.c includes it once per instantiation).
 *
 * Before including, mlp.c defines:
 *   KERNEL(name)   the instantiation's name for `name` (e.g. name##_avx)
 *   KERNEL_TARGET  a function attribute selecting the instruction set, or nothing
 *   VEC, MASK, BITS    the vector of LANES floats, and of LANES int32 / uint32 (or float,
 *                  int, uint32_t when LANES is 1)
 *   LANES          rows per vector
 *   SELECT(m, a, b), SPLAT(out, value), BITS_OF(out, v), FLOAT_OF(out, bits), LOAD(out, p),
 *   STORE(p, v)    lane-wise helpers (macros: no vector crosses a function boundary)
 * and, for the vector widths, REPEAT_LANES. The end of this file undefines the parameters
 * of one instantiation (KERNEL ... LANES, REPEAT_LANES), so the next can define its own;
 * the lane-wise helpers are shared by all and stay defined.
 *
 * Activations are [unit][row] blocks: unit j's values for the block's rows are at
 * y[j * lanes .. j * lanes + lanes), lanes a multiple of LANES. Every lane performs the
 * same sequence of IEEE-754 float32 operations as a scalar evaluation would (no FMA: the
 * build passes -ffp-contract=off), so all instantiations give the same bits.
 *
 * Scalars enter vector arithmetic only through SPLAT, and constants are exact float
 * literals: where C evaluates float expressions in double (FLT_EVAL_METHOD 1, e.g. GCC on
 * s390x in ISO C mode), a scalar operand would otherwise bring double arithmetic in.
 */

/* exp(x), lane-wise, into `out` (the method is in mlp.c's header comment). */
KERNEL_TARGET static inline void KERNEL(exp_vec)(VEC *out, const VEC *in) {
    const VEC x = *in;
    VEC xc, c, t, n, r, p, s1, s2, result;
    BITS t_bits, k, s1_bits, s2_bits;
    SPLAT(c, 0.0f);
    xc = SELECT(x == x, x, c);
    SPLAT(c, -104.0f);
    xc = SELECT(xc < c, c, xc);
    SPLAT(c, 89.0f);
    xc = SELECT(xc > c, c, xc);
    SPLAT(c, LOG2_E);
    t = xc * c;
    SPLAT(c, ROUND_MAGIC);
    t = t + c;
    n = t - c;
    BITS_OF(t_bits, t);
    k = t_bits - (ROUND_MAGIC_BITS - 256u); /* n + 256, in [106, 384] */
    SPLAT(c, LN2_HIGH);
    r = xc - n * c;
    SPLAT(c, LN2_LOW);
    r = r - n * c;
    SPLAT(p, EXP_C7);
    SPLAT(c, EXP_C6);
    p = p * r + c;
    SPLAT(c, EXP_C5);
    p = p * r + c;
    SPLAT(c, EXP_C4);
    p = p * r + c;
    SPLAT(c, EXP_C3);
    p = p * r + c;
    SPLAT(c, 0.5f);
    p = p * r + c;
    SPLAT(c, 1.0f);
    p = p * r + c;
    p = p * r + c;
    /* 2^n as 2^floor(n/2) * 2^ceil(n/2), each a normal float: exponent fields
     * floor(n/2) + 127 = (k >> 1) - 1 and ceil(n/2) + 127 = k - (k >> 1) - 1 */
    s1_bits = ((k >> 1) - 1u) << 23;
    s2_bits = (k - (k >> 1) - 1u) << 23;
    FLOAT_OF(s1, s1_bits);
    FLOAT_OF(s2, s2_bits);
    result = (p * s1) * s2;
    *out = SELECT(x == x, result, x);
}

KERNEL_TARGET static void KERNEL(activate)(const astore_dense *layer, float *y, size_t lanes) {
    const size_t count = (size_t)layer->n_out * lanes;
    VEC zero, one, z, e, result;
    SPLAT(zero, 0.0f);
    SPLAT(one, 1.0f);
    switch (layer->activation) {
    case ASTORE_ACTIVATION_RELU:
        for (size_t i = 0; i < count; i += LANES) {
            LOAD(z, y + i);
            result = SELECT(z < zero, zero, z);
            STORE(y + i, result);
        }
        break;
    case ASTORE_ACTIVATION_LEAKY_RELU: {
        VEC alpha;
        SPLAT(alpha, layer->alpha);
        for (size_t i = 0; i < count; i += LANES) {
            LOAD(z, y + i);
            result = SELECT(z < zero, z * alpha, z);
            STORE(y + i, result);
        }
        break;
    }
    case ASTORE_ACTIVATION_SIGMOID:
        for (size_t i = 0; i < count; i += LANES) {
            VEC negated;
            LOAD(z, y + i);
            negated = -z;
            KERNEL(exp_vec)(&e, &negated);
            result = one / (one + e);
            STORE(y + i, result);
        }
        break;
    case ASTORE_ACTIVATION_TANH: {
        /* an odd Taylor polynomial below 1/8, else 1 - 2 / (exp(2|z|) + 1); the sign of z */
        VEC two, eighth, c3, c5, c7;
        SPLAT(two, 2.0f);
        SPLAT(eighth, 0.125f);
        SPLAT(c3, TANH_C3);
        SPLAT(c5, TANH_C5);
        SPLAT(c7, TANH_C7);
        for (size_t i = 0; i < count; i += LANES) {
            VEC a, a2, small, large, twice, t;
            BITS bits;
            LOAD(z, y + i);
            BITS_OF(bits, z);
            bits = bits & 0x7FFFFFFFu;
            FLOAT_OF(a, bits);
            a2 = a * a;
            small = a + a * a2 * (c3 + a2 * (c5 + a2 * c7));
            twice = a + a;
            KERNEL(exp_vec)(&e, &twice);
            large = one - two / (e + one);
            t = SELECT(a < eighth, small, large);
            result = SELECT(z < zero, -t, t);
            STORE(y + i, result);
        }
        break;
    }
    case ASTORE_ACTIVATION_SOFTMAX: {
        /* per row (lane), over units in order: max, exp(z - max), sum, divide */
        const size_t n_out = layer->n_out;
        for (size_t v = 0; v < lanes; v += LANES) {
            VEC top, total;
            LOAD(top, y + v);
            for (size_t j = 1; j < n_out; j++) {
                LOAD(z, y + j * lanes + v);
                top = SELECT(z > top, z, top);
            }
            total = zero;
            for (size_t j = 0; j < n_out; j++) {
                VEC shifted;
                LOAD(z, y + j * lanes + v);
                shifted = z - top;
                KERNEL(exp_vec)(&e, &shifted);
                STORE(y + j * lanes + v, e);
                total = total + e;
            }
            for (size_t j = 0; j < n_out; j++) {
                LOAD(z, y + j * lanes + v);
                result = z / total;
                STORE(y + j * lanes + v, result);
            }
        }
        break;
    }
    default: /* identity */
        break;
    }
}

/*
 * One dense layer: y[j][r] = bias[j] + sum over i in order of w[j][i] * x[i][r]. A tile is
 * 8 units x LANES rows: 8 vector sums in registers, each input vector loaded once per tile
 * and each weight broadcast to the LANES rows.
 */
KERNEL_TARGET static void KERNEL(dense)(const astore_dense *layer, const float *x, float *y,
                                        size_t lanes) {
    const size_t n_in = layer->n_in, n_out = layer->n_out;
    const float *bias = layer->bias;
    for (size_t v = 0; v < lanes; v += LANES) {
        const float *xv = x + v;
        for (size_t j = 0; j + 8 <= n_out; j += 8) {
            const float *w = layer->weights + j * n_in;
            VEC s0, s1, s2, s3, s4, s5, s6, s7, xi, c0, c1, c2, c3, c4, c5, c6, c7;
            SPLAT(s0, bias[j]);
            SPLAT(s1, bias[j + 1]);
            SPLAT(s2, bias[j + 2]);
            SPLAT(s3, bias[j + 3]);
            SPLAT(s4, bias[j + 4]);
            SPLAT(s5, bias[j + 5]);
            SPLAT(s6, bias[j + 6]);
            SPLAT(s7, bias[j + 7]);
            for (size_t i = 0; i < n_in; i++) {
                LOAD(xi, xv + i * lanes);
                SPLAT(c0, w[i]);
                SPLAT(c1, w[n_in + i]);
                SPLAT(c2, w[2 * n_in + i]);
                SPLAT(c3, w[3 * n_in + i]);
                SPLAT(c4, w[4 * n_in + i]);
                SPLAT(c5, w[5 * n_in + i]);
                SPLAT(c6, w[6 * n_in + i]);
                SPLAT(c7, w[7 * n_in + i]);
                s0 = s0 + xi * c0;
                s1 = s1 + xi * c1;
                s2 = s2 + xi * c2;
                s3 = s3 + xi * c3;
                s4 = s4 + xi * c4;
                s5 = s5 + xi * c5;
                s6 = s6 + xi * c6;
                s7 = s7 + xi * c7;
            }
            float *yv = y + j * lanes + v;
            STORE(yv, s0);
            STORE(yv + lanes, s1);
            STORE(yv + 2 * lanes, s2);
            STORE(yv + 3 * lanes, s3);
            STORE(yv + 4 * lanes, s4);
            STORE(yv + 5 * lanes, s5);
            STORE(yv + 6 * lanes, s6);
            STORE(yv + 7 * lanes, s7);
        }
    }
    /* the units after the last whole tile: up to 4 row vectors at a time, so that 4
     * independent sums hide the latency of the additions */
    for (size_t j = n_out - n_out % 8; j < n_out; j++) {
        const float *w = layer->weights + j * n_in;
        size_t v = 0;
        for (; v + 4 * LANES <= lanes; v += 4 * LANES) {
            VEC s0, s1, s2, s3, x0, x1, x2, x3, c;
            SPLAT(s0, bias[j]);
            s1 = s2 = s3 = s0;
            for (size_t i = 0; i < n_in; i++) {
                const float *xi = x + i * lanes + v;
                SPLAT(c, w[i]);
                LOAD(x0, xi);
                LOAD(x1, xi + LANES);
                LOAD(x2, xi + 2 * LANES);
                LOAD(x3, xi + 3 * LANES);
                s0 = s0 + x0 * c;
                s1 = s1 + x1 * c;
                s2 = s2 + x2 * c;
                s3 = s3 + x3 * c;
            }
            float *yv = y + j * lanes + v;
            STORE(yv, s0);
            STORE(yv + LANES, s1);
            STORE(yv + 2 * LANES, s2);
            STORE(yv + 3 * LANES, s3);
        }
        for (; v < lanes; v += LANES) {
            VEC s, xi, c;
            SPLAT(s, bias[j]);
            for (size_t i = 0; i < n_in; i++) {
                LOAD(xi, x + i * lanes + v);
                SPLAT(c, w[i]);
                s = s + xi * c;
            }
            STORE(y + j * lanes + v, s);
        }
    }
}

/* Every layer on a block held in `a` ([feature][row]); returns the buffer with the outputs. */
KERNEL_TARGET static float *KERNEL(forward)(const astore_mlp *m, float *a, float *b,
                                            size_t lanes) {
    for (uint32_t k = 0; k < m->n_layers; k++) {
        KERNEL(dense)(&m->layers[k], a, b, lanes);
        KERNEL(activate)(&m->layers[k], b, lanes);
        float *swap = a;
        a = b;
        b = swap;
    }
    return a;
}

#undef KERNEL
#undef KERNEL_TARGET
#undef VEC
#undef MASK
#undef BITS
#undef LANES
#undef REPEAT_LANES
