// bindings.cpp -- pyastore._core: the pybind11 binding of libastore.
//
// Where astore_status becomes a Python exception: the status's C name (astore_status_name)
// goes to pyastore.errors.error_from_status, whose name-keyed STATUS_ERRORS is the one table
// of status -> exception (pyastore/_cffi_core.py does the same). Batch scoring takes
// buffer-protocol objects (numpy arrays, array.array, memoryview), so the binding itself
// never needs numpy, and releases the GIL while the C core works.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

extern "C" {
#include "astore.h"
}

namespace py = pybind11;

namespace {

py::object none_or(uint64_t value, uint64_t none) {
    return value == none ? py::object(py::none()) : py::object(py::int_(value));
}

[[noreturn]] void raise_status(const astore_error &err) {
    py::object errors = py::module_::import("pyastore.errors");
    py::object exc = errors.attr("error_from_status")(
        astore_status_name(err.status), std::string(err.message),
        py::arg("offset") = none_or(err.offset, UINT64_MAX),
        py::arg("row") = none_or(err.row, ASTORE_NO_ROW),
        py::arg("column") = none_or(err.column, ASTORE_NO_COLUMN));
    PyErr_SetObject(reinterpret_cast<PyObject *>(Py_TYPE(exc.ptr())), exc.ptr());
    throw py::error_already_set();
}

void check(astore_status status, const astore_error &err) {
    if (status != ASTORE_OK) raise_status(err);
}

// An ASTORE_ERR_INPUT about the call's arguments (no offset, row or column).
[[noreturn]] void raise_input_error(const char *format, ...) {
    astore_error err{ASTORE_ERR_INPUT, UINT64_MAX, ASTORE_NO_ROW, ASTORE_NO_COLUMN, {0}};
    va_list args;
    va_start(args, format);
    std::vsnprintf(err.message, sizeof err.message, format, args);
    va_end(args);
    raise_status(err);
}

class Container {
  public:
    explicit Container(py::bytes data) : data_(std::move(data)) {
        char *pointer = nullptr;
        Py_ssize_t length = 0;
        if (PyBytes_AsStringAndSize(data_.ptr(), &pointer, &length) != 0) {
            throw py::error_already_set();
        }
        astore_error err;
        astore_status status = astore_container_open(reinterpret_cast<const uint8_t *>(pointer),
                                                     static_cast<size_t>(length), &handle_, &err);
        check(status, err);
    }
    ~Container() { astore_container_close(handle_); }
    Container(const Container &) = delete;
    Container &operator=(const Container &) = delete;

    py::object store_key() const {
        uint8_t key[32];
        astore_container_store_key(handle_, key);
        return py::bytes(reinterpret_cast<const char *>(key), 32).attr("hex")();
    }
    py::tuple format_version() const {
        uint16_t major = 0, minor = 0;
        astore_container_version(handle_, &major, &minor);
        return py::make_tuple(major, minor);
    }
    uint32_t signature_algorithm() const {
        uint32_t algorithm = 0;
        astore_container_signature(handle_, &algorithm, nullptr, nullptr);
        return algorithm;
    }
    py::bytes public_key() const {
        uint8_t key[32];
        astore_container_signature(handle_, nullptr, key, nullptr);
        return py::bytes(reinterpret_cast<const char *>(key), 32);
    }
    py::bytes signature() const {
        uint8_t signature[64];
        astore_container_signature(handle_, nullptr, nullptr, signature);
        return py::bytes(reinterpret_cast<const char *>(signature), 64);
    }
    py::bytes signed_message() const {
        size_t length = astore_container_signed_message(handle_, nullptr, 0);
        std::string message(length, '\0');
        astore_container_signed_message(handle_, reinterpret_cast<uint8_t *>(&message[0]), length);
        return py::bytes(message);
    }
    py::list sections() const {
        py::list result;
        size_t count = astore_container_section_count(handle_);
        for (size_t i = 0; i < count; i++) {
            astore_section_info info;
            astore_error err;
            check(astore_container_section(handle_, i, &info, &err), err);
            result.append(py::make_tuple(std::string(info.type), info.flags, info.offset,
                                         info.length));
        }
        return result;
    }
    py::object section(const std::string &type) const {
        astore_section_info info;
        astore_error err;
        if (astore_container_find(handle_, type.c_str(), &info, &err) != ASTORE_OK) {
            return py::none();
        }
        return py::bytes(reinterpret_cast<const char *>(info.data), static_cast<size_t>(info.length));
    }
    const astore_container *handle() const { return handle_; }
    py::bytes data() const { return data_; }

  private:

    py::bytes data_;  // keeps the borrowed buffer alive
    astore_container *handle_ = nullptr;
};

class Model {
  public:
    explicit Model(py::object container) : container_(std::move(container)) {
        const Container &c = container_.cast<const Container &>();
        astore_error err;
        check(astore_model_open(c.handle(), &handle_, &err), err);
        n_inputs_ = astore_model_n_inputs(handle_);
        n_outputs_ = astore_model_n_outputs(handle_);
        py::list names, accepts;
        for (size_t i = 0; i < n_inputs_; i++) {
            astore_input_info info;
            if (astore_model_input(handle_, i, &info) != ASTORE_OK) {
                throw std::logic_error("astore_model_input failed for an input in range");
            }
            names.append(py::str(info.name, info.name_length));
            accepts.append(py::bool_(info.accepts_missing != 0));
        }
        input_names_ = py::tuple(names);
        accepts_missing_ = py::tuple(accepts);
    }
    ~Model() { astore_model_close(handle_); }
    Model(const Model &) = delete;
    Model &operator=(const Model &) = delete;

    size_t n_inputs() const { return n_inputs_; }
    size_t n_outputs() const { return n_outputs_; }
    py::object tree_walk() const {
        const char *name = astore_model_tree_walk(handle_);
        if (name == nullptr) return py::none();
        return py::str(name);
    }
    size_t walk_bytes() const { return astore_model_walk_bytes(handle_); }
    py::tuple input_names() const { return input_names_; }
    py::tuple accepts_missing() const { return accepts_missing_; }

    // One event: a sequence of numbers (None = missing). No numpy, no GIL release: the
    // call is shorter than the release would be.
    py::list score_one(py::handle row) const {
        PyObject *fast = PySequence_Fast(row.ptr(), "a row must be a sequence of numbers");
        if (fast == nullptr) throw py::error_already_set();
        py::object guard = py::reinterpret_steal<py::object>(fast);
        Py_ssize_t length = PySequence_Fast_GET_SIZE(fast);
        if (static_cast<size_t>(length) != n_inputs_) {
            raise_input_error("the row has %zd values, the model takes %zu", length, n_inputs_);
        }
        float stack_row[64];
        double stack_out[16];
        std::vector<float> heap_row;
        std::vector<double> heap_out;
        float *x = stack_row;
        double *out = stack_out;
        if (n_inputs_ > 64) {
            heap_row.resize(n_inputs_);
            x = heap_row.data();
        }
        if (n_outputs_ > 16) {
            heap_out.resize(n_outputs_);
            out = heap_out.data();
        }
        PyObject **items = PySequence_Fast_ITEMS(fast);
        for (Py_ssize_t i = 0; i < length; i++) {
            PyObject *item = items[i];
            if (item == Py_None) {
                x[i] = NAN;
                continue;
            }
            double value = PyFloat_AsDouble(item);
            if (value == -1.0 && PyErr_Occurred()) {
                PyErr_Clear();
                raise_not_a_number(static_cast<size_t>(i), item);
            }
            x[i] = static_cast<float>(value);
        }
        astore_error err;
        check(astore_model_score(handle_, x, 1, n_inputs_, out, n_outputs_, 1, &err), err);
        py::list result(n_outputs_);
        for (size_t k = 0; k < n_outputs_; k++) {
            PyList_SET_ITEM(result.ptr(), k, PyFloat_FromDouble(out[k]));
        }
        return result;
    }

    // Batch: `x` a C-contiguous float32 buffer of n_rows * n_inputs values, `out` a writable
    // C-contiguous float64 buffer of n_rows * n_outputs values.
    void score_into(py::buffer x, py::buffer out, unsigned n_threads) const {
        py::buffer_info xin = x.request();
        py::buffer_info yout = out.request(true);
        check_rows_buffer(xin, "score_into");
        if (yout.itemsize != 8 || yout.format != py::format_descriptor<double>::format()) {
            throw py::type_error("score_into: out must be a float64 buffer");
        }
        if (!is_c_contiguous(yout)) {
            throw py::type_error("score_into: buffers must be C-contiguous");
        }
        size_t n_rows = rows_of(xin);
        astore_error err;
        astore_status status;
        {
            py::gil_scoped_release release;
            status = astore_model_score(handle_, static_cast<const float *>(xin.ptr), n_rows,
                                        n_inputs_, static_cast<double *>(yout.ptr),
                                        static_cast<size_t>(yout.size), n_threads, &err);
        }
        check(status, err);
    }

    // The rows of `x` from `start` on, checked against the inputs' missing-value policies:
    // the InputError of the first refused row (its `row` indexes `x`), or None.
    void check_rows(py::buffer x, size_t start) const {
        py::buffer_info xin = x.request();
        check_rows_buffer(xin, "check_rows");
        size_t n_rows = rows_of(xin);
        if (start > n_rows) {
            throw py::value_error("check_rows: start " + std::to_string(start) +
                                  " is past the " + std::to_string(n_rows) + " rows");
        }
        astore_error err;
        astore_status status;
        size_t first_invalid = 0;
        {
            py::gil_scoped_release release;
            status = astore_model_check_rows(handle_,
                                             static_cast<const float *>(xin.ptr) +
                                                 start * n_inputs_,
                                             n_rows - start, n_inputs_, &first_invalid, &err);
        }
        if (status != ASTORE_OK && err.row != ASTORE_NO_ROW) err.row += start;
        check(status, err);
    }

  private:
    // The same message as pyastore.model.not_a_number, without the row (there is one).
    [[noreturn]] void raise_not_a_number(size_t column, PyObject *item) const {
        std::string name = py::repr(input_names_[column]);
        std::string shown = py::repr(py::handle(item));
        if (shown.size() > 80) shown = shown.substr(0, 77) + "...";
        astore_error err{ASTORE_ERR_INPUT, UINT64_MAX, ASTORE_NO_ROW,
                         static_cast<uint32_t>(column), {0}};
        std::snprintf(err.message, sizeof err.message, "column %s: %s is not a number",
                      name.c_str(), shown.c_str());
        raise_status(err);
    }

    static bool is_c_contiguous(const py::buffer_info &info) {
        py::ssize_t expected = info.itemsize;
        for (py::ssize_t d = info.ndim - 1; d >= 0; d--) {
            if (info.shape[d] > 1 && info.strides[d] != expected) return false;
            expected *= info.shape[d];
        }
        return true;
    }

    static void check_rows_buffer(const py::buffer_info &xin, const char *method) {
        if (xin.itemsize != 4 || xin.format != py::format_descriptor<float>::format()) {
            throw py::type_error(std::string(method) + ": x must be a float32 buffer");
        }
        if (!is_c_contiguous(xin)) {
            throw py::type_error(std::string(method) + ": buffers must be C-contiguous");
        }
    }

    // Whole rows of n_inputs values in `xin`.
    size_t rows_of(const py::buffer_info &xin) const {
        size_t x_count = static_cast<size_t>(xin.size);
        if (n_inputs_ == 0 || x_count % n_inputs_ != 0) {
            raise_input_error("%zu values do not make whole rows of %zu columns", x_count,
                              n_inputs_);
        }
        return x_count / n_inputs_;
    }

    py::object container_;  // keeps the container (and its bytes) alive
    astore_model *handle_ = nullptr;
    size_t n_inputs_ = 0;
    size_t n_outputs_ = 0;
    py::tuple input_names_;
    py::tuple accepts_missing_;
};

}  // namespace

PYBIND11_MODULE(_core, m) {
    m.doc() = "libastore, the pyastore inference core (see csrc/astore.h)";
    m.attr("LIBRARY_VERSION") = astore_version();
    uint16_t major = 0, minor = 0;
    astore_format_version(&major, &minor);
    m.attr("FORMAT_VERSION") = py::make_tuple(major, minor);

    py::list status_names;
    for (unsigned s = 0; s < ASTORE_STATUS_COUNT; s++) {
        status_names.append(astore_status_name(static_cast<astore_status>(s)));
    }
    m.attr("STATUS_NAMES") = py::tuple(status_names);

    py::class_<Container>(m, "Container")
        .def(py::init<py::bytes>(), py::arg("data"))
        .def_property_readonly("store_key", &Container::store_key)
        .def_property_readonly("format_version", &Container::format_version)
        .def_property_readonly("signature_algorithm", &Container::signature_algorithm)
        .def_property_readonly("public_key", &Container::public_key)
        .def_property_readonly("signature", &Container::signature)
        .def_property_readonly("signed_message", &Container::signed_message)
        .def_property_readonly("data", &Container::data)
        .def("sections", &Container::sections)
        .def("section", &Container::section, py::arg("type"));

    py::class_<Model>(m, "Model")
        .def(py::init<py::object>(), py::arg("container"))
        .def_property_readonly("n_inputs", &Model::n_inputs)
        .def_property_readonly("n_outputs", &Model::n_outputs)
        .def_property_readonly("tree_walk", &Model::tree_walk)
        .def_property_readonly("walk_bytes", &Model::walk_bytes)
        .def_property_readonly("input_names", &Model::input_names)
        .def_property_readonly("accepts_missing", &Model::accepts_missing)
        .def("check_rows", &Model::check_rows, py::arg("x"), py::arg("start") = 0)
        .def("score_one", &Model::score_one, py::arg("row"))
        .def("score_into", &Model::score_into, py::arg("x"), py::arg("out"),
             py::arg("n_threads") = 1);
}
