// The one translation unit that compiles Asio (with its SSL part) and Beast. Every other file
// of the module is built with BOOST_ASIO_SEPARATE_COMPILATION and
// BOOST_BEAST_SEPARATE_COMPILATION, so they see declarations only and the library bodies are
// compiled here, once.
#include <boost/asio/impl/src.hpp>
#include <boost/asio/ssl/impl/src.hpp>
#include <boost/beast/src.hpp>
