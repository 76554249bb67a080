// blip_server: serves one BLIP or BLIP-2 model over HTTP (cpp-httplib):
// GET /health, POST /caption, /vqa, /match, /embed, with JSON answers.
#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <new>
#include <string>
#include <thread>
#include <vector>

#include "blip/blip.hpp"
#include "server/served_model.hpp"
#include "support/arguments.hpp"

// After Eigen: httplib.h brings <resolv.h>, whose `_res` macro would rewrite Eigen's parameters of that name.
#include <httplib.h>

namespace {

constexpr long kDefaultMaxBodyBytes = 32L << 20;
constexpr long kDefaultWorkers = 4;

const std::string kUsage =
    "usage: blip_server MODEL_DIR [--host H] [--port P] [options]\n"
    "\n"
    "Loads one Hugging Face BLIP or BLIP-2 model folder once and answers HTTP requests on it, several at a\n"
    "time. What the model does decides the routes it answers (GET /health lists them):\n"
    "  GET  /health    {\"status\": \"ok\", \"model\", \"architecture\", \"family\", \"tasks\": [...]}\n"
    "  POST /caption   image [, prompt]          -> {\"caption\": ...}           (captioning and BLIP-2 models)\n"
    "  POST /vqa       image, question           -> {\"answer\": ...}            (BLIP VQA and BLIP-2 models)\n"
    "  POST /match     image, text               -> {\"itm\": p, \"itc\": cosine}  (retrieval models)\n"
    "  POST /embed     image and/or text         -> {\"image_embedding\": [...], \"text_embedding\": [...]}\n"
    "Bodies: multipart/form-data with the image file in the field \"image\", or a JSON object with the image\n"
    "base64-encoded in \"image_base64\". /caption and /vqa also take the generation fields num_beams,\n"
    "max_new_tokens, min_new_tokens, repetition_penalty, num_beam_groups, diversity_penalty, suppress_tokens,\n"
    "do_sample, temperature, top_k, top_p, typical_p, seed (HF's names; the ranges of the programs' flags).\n"
    "A refused request gets a 4xx status and {\"error\": ..., \"field\": ...} naming the field at fault.\n"
    "\n"
    "options:\n"
    "  --host H               address to listen on (default 127.0.0.1; 0.0.0.0 for every interface)\n"
    "  --port P               TCP port (default 8080; 0 = any free port, printed when serving)\n"
    "  --workers N            requests served at once, one thread each (default 4)\n"
    "  --threads N            kernel threads per request (default: processors / workers, at least 1)\n"
    "  --max-body-bytes N     largest request body (default 33554432 = 32 MiB); larger ones get 413\n"
    "  --read-timeout S       seconds a read from a client may wait (default 30)\n"
    "  --write-timeout S      seconds a write to a client may wait (default 30)\n"
    "  --tokenizer DIR        tokenizer files from DIR instead of MODEL_DIR\n"
    "  --precision P          Linear weights in P: as-stored (default), f32, bf16, f16 or int8\n"
    "  --help                 this text\n"
    "One line per request goes to stderr. SIGINT or SIGTERM stops the server: it accepts no new connection,\n"
    "finishes the requests in progress and exits with status 0.\n" +
    std::string(blip::examples::kGenerationDefaultsHelp);

// The routes, for 404 and 405 answers.
struct Route {
  const char* method;
  const char* path;
};
constexpr Route kRoutes[] = {
    {"GET", "/health"}, {"POST", "/caption"}, {"POST", "/vqa"}, {"POST", "/match"}, {"POST", "/embed"}};

void send_json(httplib::Response& response, int status, const nlohmann::json& body) {
  response.status = status;
  // Model output is decoded text; should a byte sequence be invalid UTF-8, it becomes U+FFFD, not an exception.
  response.set_content(body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), "application/json");
}

void send_error(httplib::Response& response, int status, const std::string& message, const std::string& field = "") {
  nlohmann::json body = {{"error", message}};
  if (!field.empty()) body["field"] = field;
  send_json(response, status, body);
}

// The fields of a POST body, whichever of the two forms it came in.
blip::server::RequestFields read_fields(const httplib::Request& request) {
  if (request.is_multipart_form_data()) return blip::server::fields_from_form(request.files);
  const std::string type = request.get_header_value("Content-Type");
  if (type.rfind("application/json", 0) == 0) return blip::server::fields_from_json(request.body);
  blip::server::refuse(415, "", "Content-Type '", blip::clip(type),
                       "': send multipart/form-data (the image in the field \"image\") or application/json "
                       "(the image base64-encoded in \"image_base64\")");
}

// A route's handler: every exception becomes a JSON answer, and the server keeps serving.
template <class Task>
httplib::Server::Handler task_route(Task task) {
  return [task](const httplib::Request& request, httplib::Response& response) {
    try {
      send_json(response, 200, task(read_fields(request)));
    } catch (const blip::server::RequestError& error) {
      send_error(response, error.status(), error.what(), error.field());
    } catch (const std::bad_alloc&) {
      send_error(response, 500, "out of memory (see docs/reliability.md for the input limits)");
    } catch (const std::exception& error) {
      send_error(response, 500, error.what());
    } catch (...) {
      send_error(response, 500, "unknown error");
    }
  };
}

// What httplib's own refusals (sent with an empty body) say.
std::string httplib_refusal(int status, long max_body_bytes) {
  switch (status) {
    case 400:
      return "malformed HTTP request";
    case 413:
      return "request body above the " + std::to_string(max_body_bytes) + "-byte limit (--max-body-bytes)";
    case 414:
      return "request line too long";
    case 415:
      return "unsupported Content-Encoding";
    case 416:
      return "bad Range header";
    default:
      return "HTTP status " + std::to_string(status);
  }
}

// The thread that takes SIGINT and SIGTERM (blocked in every other thread)
// with sigwait: while the model loads, a signal ends the process at once;
// once it serves, the server stops accepting and listen_after_bind returns
// when the requests in progress are answered.
class StopSignalThread {
 public:
  StopSignalThread(const sigset_t& signals, httplib::Server& server)
      : thread_([this, signals, &server] {
          int signal_number = 0;
          if (sigwait(&signals, &signal_number) != 0 || finished_) return;
          const char* name = signal_number == SIGINT ? "SIGINT" : "SIGTERM";
          if (!loaded) {
            std::fprintf(stderr, "[blip_server] %s while loading the model: exiting\n", name);
            std::_Exit(blip::examples::kExitSuccess);
          }
          stop_requested = true;
          std::fprintf(stderr, "[blip_server] %s: stopping (finishing the requests in progress)\n", name);
          // listen_after_bind may not have started yet: stop() only acts on a running server.
          while (!server.is_running() && !finished_) std::this_thread::sleep_for(std::chrono::milliseconds(5));
          server.stop();
        }) {}
  StopSignalThread(const StopSignalThread&) = delete;
  StopSignalThread& operator=(const StopSignalThread&) = delete;
  ~StopSignalThread() { finish(); }

  // Ends the thread: wakes it with a signal of its own when none came.
  void finish() {
    if (!thread_.joinable()) return;
    finished_ = true;
    if (!stop_requested) pthread_kill(thread_.native_handle(), SIGTERM);
    thread_.join();
  }

  std::atomic<bool> loaded{false}, stop_requested{false};

 private:
  std::atomic<bool> finished_{false};
  std::thread thread_;
};

// A request path for the log: control bytes (a decoded %0A) would forge log lines.
std::string printable(const std::string& text) {
  std::string shown = blip::clip(text);
  for (char& c : shown) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) c = '?';
  }
  return shown;
}

// When each request started, for the log line (the logger runs on the request's worker thread).
thread_local std::chrono::steady_clock::time_point request_started;
thread_local bool request_timed = false;

}  // namespace

int main(int argc, char** argv) {
  // SIGINT and SIGTERM are taken by one thread with sigwait: blocked here,
  // before any thread starts (OpenMP's and httplib's inherit the mask).
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  return blip::examples::run_program(
      argc, argv, "blip_server", kUsage.c_str(),
      {"--host", "--port", "--workers", "--max-body-bytes", "--read-timeout", "--write-timeout"}, {},
      [&](const blip::examples::CommandLine& command) {
        if (command.positional().size() != 1) return blip::examples::usage_error(kUsage.c_str());
        const std::string model_dir = command.positional()[0];
        const std::string host = command.value("--host", "127.0.0.1");
        if (host.empty()) blip::examples::usage_fail("option --host expects an address, got ''");
        const int port = static_cast<int>(command.integer("--port", 8080, 0, 65535));
        const int workers = static_cast<int>(command.integer("--workers", kDefaultWorkers, 1, 256));
        const long max_body_bytes = command.integer("--max-body-bytes", kDefaultMaxBodyBytes, 1024, 1L << 31);
        const long read_timeout = command.integer("--read-timeout", 30, 1, 3600);
        const long write_timeout = command.integer("--write-timeout", 30, 1, 3600);
        blip::LoadOptions load_options = blip::examples::load_options_from(command);
        // OpenMP's thread count is per thread: each request sets it on its worker (ServedModel::run_model).
        const int threads = load_options.num_threads > 0
                                ? load_options.num_threads
                                : std::max(1, static_cast<int>(std::thread::hardware_concurrency()) / workers);

        httplib::Server server;
        // The port is taken before the model loads: a port in use must not cost the load time.
        const int bound_port =
            port == 0 ? server.bind_to_any_port(host) : (server.bind_to_port(host, port) ? port : -1);
        if (bound_port < 0)
          blip::fail("cannot listen on ", host, ":", port, " (address in use, not an address of this machine, or a ",
                     "port below 1024 without the right)");

        // From here on SIGINT / SIGTERM stop the server (or the process, while the model loads).
        StopSignalThread stop_signal(stop_signals, server);
        const blip::server::ServedModel model = blip::server::ServedModel::load(model_dir, load_options, threads);
        stop_signal.loaded = true;

        server.new_task_queue = [workers] { return new httplib::ThreadPool(static_cast<std::size_t>(workers)); };
        server.set_payload_max_length(static_cast<std::size_t>(max_body_bytes));
        server.set_read_timeout(static_cast<time_t>(read_timeout), 0);
        server.set_write_timeout(static_cast<time_t>(write_timeout), 0);

        server.set_pre_routing_handler([](const httplib::Request& request, httplib::Response& response) {
          request_started = std::chrono::steady_clock::now();
          request_timed = true;
          // httplib reads a chunked body, or one without a length, whole and with no limit, and inflates a
          // compressed one with no limit either: these are refused before any of the body is read, and
          // the connection closes (the unread body would follow as the next request).
          const bool needs_body = request.method == "POST" || request.method == "PUT" || request.method == "PATCH";
          if (request.has_header("Transfer-Encoding") || (needs_body && !request.has_header("Content-Length"))) {
            response.set_header("Connection", "close");
            send_error(response, 411, "a request body needs a Content-Length (chunked bodies are not accepted)");
            return httplib::Server::HandlerResponse::Handled;
          }
          const std::string encoding = request.get_header_value("Content-Encoding");
          if (!encoding.empty() && encoding != "identity") {
            response.set_header("Connection", "close");
            send_error(response, 415,
                       "Content-Encoding '" + blip::clip(encoding) + "' is not accepted; send the body uncompressed");
            return httplib::Server::HandlerResponse::Handled;
          }
          return httplib::Server::HandlerResponse::Unhandled;
        });

        server.Get("/health", [&model](const httplib::Request&, httplib::Response& response) {
          send_json(response, 200, model.health());
        });
        server.Post("/caption", task_route([&model](const auto& fields) { return model.caption(fields); }));
        server.Post("/vqa", task_route([&model](const auto& fields) { return model.vqa(fields); }));
        server.Post("/match", task_route([&model](const auto& fields) { return model.match(fields); }));
        server.Post("/embed", task_route([&model](const auto& fields) { return model.embed(fields); }));

        // Everything else, under every method: 405 for a known path, 404 otherwise. Registered for
        // every method so that a body is read (up to the limit) before the answer, keeping the
        // connection in step.
        const httplib::Server::Handler unknown = [](const httplib::Request& request, httplib::Response& response) {
          std::string allowed, routes;
          for (const Route& route : kRoutes) {
            routes += std::string(routes.empty() ? "" : ", ") + route.method + " " + route.path;
            if (request.path == route.path) allowed += std::string(allowed.empty() ? "" : ", ") + route.method;
          }
          if (!allowed.empty()) {
            response.set_header("Allow", allowed);
            send_error(response, 405,
                       request.method + " " + request.path + ": method not allowed (use " + allowed + ")");
          } else {
            send_error(response, 404,
                       "no route " + request.method + " " + blip::clip(request.path) + " (routes: " + routes + ")");
          }
        };
        // ([\s\S]: std::regex's '.' does not match a newline, which a decoded %0A puts in a path.)
        const std::string any_path = "[\\s\\S]*";
        server.Get(any_path, unknown);
        server.Post(any_path, unknown);
        server.Put(any_path, unknown);
        server.Patch(any_path, unknown);
        server.Delete(any_path, unknown);
        server.Options(any_path, unknown);

        // httplib's own refusals (a malformed request line, a body over the limit, ...) come with an
        // empty body: JSON like the others.
        server.set_error_handler(httplib::Server::HandlerWithResponse(
            [max_body_bytes](const httplib::Request&, httplib::Response& response) {
              if (!response.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
              send_error(response, response.status, httplib_refusal(response.status, max_body_bytes));
              return httplib::Server::HandlerResponse::Handled;
            }));
        // A backstop: the handlers catch everything themselves.
        server.set_exception_handler([](const httplib::Request&, httplib::Response& response, std::exception_ptr) {
          send_error(response, 500, "internal error");
        });
        server.set_logger([](const httplib::Request& request, const httplib::Response& response) {
          const double seconds =
              request_timed ? std::chrono::duration<double>(std::chrono::steady_clock::now() - request_started).count()
                            : 0.0;
          request_timed = false;
          std::fprintf(stderr, "[blip_server] %s \"%s %s\" %d %zu bytes %.3f s\n", request.remote_addr.c_str(),
                       request.method.c_str(), printable(request.path).c_str(), response.status, response.body.size(),
                       seconds);
        });

        std::fprintf(
            stderr,
            "[blip_server] serving %s (%s, %s: %s) on http://%s:%d with %d workers, %d kernel threads per request\n",
            model_dir.c_str(), model.architecture().c_str(), model.family().c_str(),
            nlohmann::json(model.tasks()).dump().c_str(), host.c_str(), bound_port, workers, threads);
        const bool served = stop_signal.stop_requested || server.listen_after_bind();
        const bool stopped_by_signal = stop_signal.stop_requested;
        stop_signal.finish();
        if (!served && !stopped_by_signal) blip::fail("the server stopped on an error (", host, ":", bound_port, ")");
        std::fprintf(stderr, "[blip_server] stopped\n");
        return 0;
      });
}
