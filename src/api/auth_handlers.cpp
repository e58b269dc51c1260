// POST /register, POST /login, POST /logout and GET /me. Rules and hashing are the
// AuthService's; these handlers only read the body and shape the answers.
#include <string>
#include <vector>

#include "api/representation.hpp"
#include "api/routes.hpp"

namespace fetchd::api {

namespace {

struct Credentials {
  std::string username;
  std::string password;
};

// Both fields must be present and strings; the values' rules (length, characters) are the
// AuthService's to check.
Result<Credentials> read_credentials(const Request& request) {
  auto values =
      HandlerContext::string_fields(request, {"username", "password"}, "invalid credentials body");
  if (!values) return tl::unexpected(values.error());
  return Credentials{std::move((*values)[0]), std::move((*values)[1])};
}

}  // namespace

void add_auth_routes(Router& router, const HandlerContext& context) {
  router.add(
      "POST", "/register",
      [&context](const Request& request, const RouteParams&) {
        auto credentials = read_credentials(request);
        if (!credentials) return context.error(request, credentials.error());
        auto user = context.auth().register_user(credentials->username, credentials->password);
        if (!user) return context.error(request, user.error());
        return json_response(201, user_to_json(*user));
      },
      /*blocking=*/true);

  router.add(
      "POST", "/login",
      [&context](const Request& request, const RouteParams&) {
        auto credentials = read_credentials(request);
        if (!credentials) return context.error(request, credentials.error());
        auto login = context.auth().login(credentials->username, credentials->password,
                                          request.remote_address);
        if (!login) return context.error(request, login.error());
        return json_response(200, login_to_json(*login));
      },
      /*blocking=*/true);

  router.add("POST", "/logout",
             context.with_user([&context](const Request& request, const RouteParams&, const User&) {
               // with_user has already checked that the header holds a valid bearer token.
               const auto token = bearer_token(request);
               if (auto done = context.auth().logout(token.value_or("")); !done)
                 return context.error(request, done.error());
               return no_content();
             }));

  router.add("GET", "/me",
             context.with_user([](const Request&, const RouteParams&, const User& user) {
               return json_response(200, user_to_json(user));
             }));
}

}  // namespace fetchd::api
