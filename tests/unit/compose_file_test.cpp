// Compose file parsing: what kiln compose reads, the order it starts services in, and errors that
// name the file, the line and the key.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "compose_file.h"

namespace kiln::cli {
namespace {
namespace fs = std::filesystem;

class ComposeFileTest : public ::testing::Test {
  protected:
    void SetUp() override {
        dir_ = fs::temp_directory_path() / ("kiln-compose-" + std::to_string(::getpid()));
        fs::create_directories(dir_ / "project" / "api");
    }
    void TearDown() override { fs::remove_all(dir_); }

    std::string path() const { return (dir_ / "project" / "compose.yaml").string(); }
    ComposeFile parse(const std::string& text) const {
        std::ofstream(path()) << text;
        return parse_compose(path());
    }
    // The error parsing `text` gives, without the file name's prefix.
    std::string error(const std::string& text) const {
        try {
            parse(text);
        } catch (const ComposeError& e) {
            const std::string message = e.what();
            EXPECT_EQ(message.rfind(path() + ":", 0), 0u) << "the error does not start with the file: " << message;
            return message.substr(path().size() + 1);
        }
        ADD_FAILURE() << "no error for:\n" << text;
        return "";
    }
    static std::vector<std::string> names(const ComposeFile& file) {
        std::vector<std::string> out;
        for (const auto& service : file.services) out.push_back(service.name);
        return out;
    }

    fs::path dir_;
};

TEST_F(ComposeFileTest, ReadsEveryKeyKilnSupports) {
    const ComposeFile file = parse(R"(version: "3.8"
name: shop
services:
  web:
    image: web:latest
    command: /bin/server --port 8080 "/var/www root"
    environment:
      - GREETING=hi there
      - EMPTY=
    ports:
      - "80:8080"
    mem_limit: 64m
    cpu_shares: 512
    pids_limit: 32
    depends_on: [api]
    restart: always
  api:
    build: ./api
    image: api:v2
    command: ["/bin/api", "-v"]
    restart: "no"
x-notes: ignored
)");
    EXPECT_EQ(file.path, path());
    EXPECT_EQ(file.name, "shop");
    ASSERT_EQ(names(file), (std::vector<std::string>{"api", "web"}));
    const ComposeService& api = file.services[0];
    EXPECT_EQ(api.build, (dir_ / "project" / "api").string());
    EXPECT_EQ(api.image, "api:v2");
    EXPECT_EQ(api.command, (std::vector<std::string>{"/bin/api", "-v"}));
    EXPECT_EQ(api.restart, "never");
    EXPECT_FALSE(api.memory_mb);
    const ComposeService& web = file.services[1];
    EXPECT_EQ(web.image, "web:latest");
    EXPECT_EQ(web.build, "");
    EXPECT_EQ(web.command, (std::vector<std::string>{"/bin/server", "--port", "8080", "/var/www root"}));
    EXPECT_EQ(web.environment, (std::vector<std::string>{"GREETING=hi there", "EMPTY="}));
    EXPECT_EQ(web.ports, (std::vector<std::string>{"80:8080"}));
    EXPECT_EQ(web.memory_mb, 64);
    EXPECT_EQ(web.cpu_shares, 512);
    EXPECT_EQ(web.pids_limit, 32);
    EXPECT_FALSE(api.cpu_shares);
    EXPECT_EQ(web.depends_on, (std::vector<std::string>{"api"}));
    EXPECT_EQ(web.restart, "always");
}

TEST_F(ComposeFileTest, TheNameDefaultsToTheDirectoryAndBuildTakesAContext) {
    const ComposeFile file = parse("services:\n  api:\n    build:\n      context: api/\n");
    EXPECT_EQ(file.name, "project");
    EXPECT_EQ(file.services.at(0).build, (dir_ / "project" / "api").string());
    EXPECT_EQ(parse("services:\n  api:\n    build: .\n").services.at(0).build, (dir_ / "project").string());
    EXPECT_EQ(parse("services:\n  api:\n    image: a\n    restart: on-failure\n").services.at(0).restart, "on-failure");
    EXPECT_EQ(parse("services:\n  api:\n    image: a\n    restart: unless-stopped\n").services.at(0).restart, "always");
}

TEST_F(ComposeFileTest, ServicesComeAfterWhatTheyDependOn) {
    const ComposeFile file = parse(R"(services:
  web:
    image: web
    depends_on:
      cache:
        condition: service_started
      api:
        condition: service_healthy
  api:
    image: api
    depends_on: [db]
  worker:
    image: worker
  cache:
    image: cache
  db:
    image: db
)");
    // Depth first in the file's order: what nothing orders stays where the file has it.
    EXPECT_EQ(names(file), (std::vector<std::string>{"cache", "db", "api", "web", "worker"}));
}

TEST_F(ComposeFileTest, EnvironmentIsAListOrAMapping) {
    EXPECT_EQ(parse("services:\n  a:\n    image: a\n    environment:\n      - A=1\n      - B=x=y\n")
                  .services.at(0)
                  .environment,
              (std::vector<std::string>{"A=1", "B=x=y"}));
    EXPECT_EQ(parse("services:\n  a:\n    image: a\n    environment:\n      A: 1\n      B: \"\"\n      C: true\n")
                  .services.at(0)
                  .environment,
              (std::vector<std::string>{"A=1", "B=", "C=true"}));
}

TEST_F(ComposeFileTest, PortsAreHostColonGuestStringsOrNumbers) {
    const ComposeFile file = parse(R"(services:
  a:
    image: a
    ports:
      - "8080:80"
      - 9000:90
      - 443:8443/tcp
      - 7000
      - "6000"
)");
    EXPECT_EQ(file.services.at(0).ports,
              (std::vector<std::string>{"8080:80", "9000:90", "443:8443", "7000:7000", "6000:6000"}));
}

TEST_F(ComposeFileTest, MemLimitTakesUnits) {
    EXPECT_EQ(parse_mem_limit("64m"), 64);
    EXPECT_EQ(parse_mem_limit("128M"), 128);
    EXPECT_EQ(parse_mem_limit("256MB"), 256);
    EXPECT_EQ(parse_mem_limit("1g"), 1024);
    EXPECT_EQ(parse_mem_limit("2GiB"), 2048);
    EXPECT_EQ(parse_mem_limit("65536k"), 64);
    EXPECT_EQ(parse_mem_limit("67108864"), 64);
    EXPECT_EQ(parse_mem_limit("67108865"), 65);  // rounded up: no less than asked
    EXPECT_EQ(parse_mem_limit("100b"), 1);
    for (const char* bad : {"", "m", "0", "64x", "1.5g", "-64m", "64 m", "9999999999999g"})
        EXPECT_THROW(parse_mem_limit(bad), std::invalid_argument) << bad;
    EXPECT_EQ(parse("services:\n  a:\n    image: a\n    mem_limit: 1073741824\n").services.at(0).memory_mb, 1024);
}

TEST_F(ComposeFileTest, ErrorsNameTheLineAndTheKey) {
    EXPECT_EQ(error("services:\n  web:\n    image: web\n    pids_limit: 2\n"),
              "4: services.web.pids_limit: expected a whole number from 8 to 4194304");
    EXPECT_EQ(error("services:\n  web:\n    image: web\n    cpu_shares: half\n"),
              "4: services.web.cpu_shares: expected a whole number from 2 to 262144");
    EXPECT_EQ(error("services:\n  web:\n    image: web\n    volumes: [./a:/b]\n"),
              "4: services.web.volumes: './a:/b': Kiln mounts named volumes, not host directories");
    EXPECT_EQ(error("services:\n  web:\n    image: web\n\n    colour: blue\n"),
              "5: services.web.colour: unknown key; Kiln reads image, build, command, environment, ports, mem_limit, "
              "cpu_shares, pids_limit, depends_on, restart, volumes");
    EXPECT_EQ(error("services:\n  web:\n    image: web\nextra: 1\n"),
              "4: extra: unknown key; Kiln reads services, name, version, volumes");
    EXPECT_EQ(error("version: '3'\n"), "1: services: missing; a compose file lists its services");
    EXPECT_EQ(error("- a\n"), "1: a compose file is a mapping with 'services'");
    EXPECT_EQ(error("services: [unclosed\n").substr(0, 19), "2: not valid YAML: ");
    EXPECT_EQ(error("services:\n  Web:\n    image: web\n"),
              "2: services: 'Web' is not a valid name (lower-case letters, digits, '.', '_', '-'; at most 63)");
    EXPECT_EQ(error("services:\n  web:\n    image: a\n  web:\n    image: b\n"), "4: services.web: appears twice");
    EXPECT_EQ(error("services:\n  web:\n    restart: always\n"),
              "2: services.web: give it an image or a build directory");
    EXPECT_EQ(error("services:\n  web:\n    image: [a]\n"), "3: services.web.image: expected a single value");
    EXPECT_EQ(error("services:\n  web:\n    build: ./missing\n"),
              "3: services.web.build: " + (dir_ / "project" / "missing").string() + " is not a directory");
    EXPECT_EQ(error("services:\n  web:\n    build:\n      context: api\n      dockerfile: Dockerfile\n"),
              "5: services.web.build: Kiln builds the Kraftfile in the context directory, not a Dockerfile");
    EXPECT_EQ(error("services:\n  web:\n    image: a\n    command: {a: b}\n"),
              "4: services.web.command: expected a string or a list of strings");
    EXPECT_EQ(error("services:\n  web:\n    image: a\n    command: 'echo \"unclosed'\n"),
              "4: services.web.command: unterminated \" quote");
    EXPECT_EQ(error("services:\n  web:\n    image: a\n    environment:\n      - GOOD=1\n      - BAD\n"),
              "6: services.web.environment: 'BAD': expected NAME=VALUE");
    EXPECT_EQ(error("services:\n  web:\n    image: a\n    environment:\n      1X: 2\n"),
              "5: services.web.environment: '1X' is not a variable name");
    EXPECT_EQ(error("services:\n  web:\n    image: a\n    environment:\n      FROM_HOST:\n"),
              "5: services.web.environment: give FROM_HOST a single value");
    EXPECT_EQ(error("services:\n  web:\n    image: a\n    ports:\n      - 80:80/udp\n"),
              "5: services.web.ports: '80:80/udp': Kiln publishes TCP ports only");
    EXPECT_EQ(error("services:\n  web:\n    image: a\n    ports:\n      - 127.0.0.1:80:80\n"),
              "5: services.web.ports: '127.0.0.1:80:80': Kiln publishes on every host address: give HOST:GUEST");
    EXPECT_EQ(error("services:\n  web:\n    image: a\n    ports:\n      - 80:70000\n"),
              "5: services.web.ports: '80:70000': expected HOST:GUEST, ports 1 to 65535");
    EXPECT_EQ(error("services:\n  web:\n    image: a\n    ports: 80:80\n"),
              "4: services.web.ports: expected a list of \"HOST:GUEST\"");
    EXPECT_EQ(error("services:\n  web:\n    image: a\n    mem_limit: lots\n"),
              "4: services.web.mem_limit: 'lots': a memory size is like 64m, 1g or a number of bytes");
    EXPECT_EQ(error("services:\n  web:\n    image: a\n    restart: sometimes\n"),
              "4: services.web.restart: 'sometimes': expected no, always, on-failure or unless-stopped");
    EXPECT_EQ(
        error("services:\n  web:\n    image: a\n    depends_on:\n      api: {wait: true}\n  api:\n    image: b\n"),
        "5: services.web.depends_on: unknown key 'wait'; Kiln reads condition, required, restart");
}

TEST_F(ComposeFileTest, AnUnknownDependencyIsRefused) {
    EXPECT_EQ(
        error("services:\n  web:\n    image: a\n    depends_on:\n      - api\n      - db\n  api:\n    image: b\n"),
        "6: services.web.depends_on: 'db' is not a service of this file");
}

TEST_F(ComposeFileTest, ACycleIsRefused) {
    EXPECT_EQ(error(R"(services:
  web:
    image: a
    depends_on: [api]
  api:
    image: b
    depends_on: [db]
  db:
    image: c
    depends_on:
      - web
)"),
              "11: services.db.depends_on: a dependency cycle: web -> api -> db -> web");
    EXPECT_EQ(error("services:\n  web:\n    image: a\n    depends_on: [web]\n"),
              "4: services.web.depends_on: a dependency cycle: web -> web");
}

TEST_F(ComposeFileTest, TheFileIsFoundInItsDirectory) {
    const fs::path project = dir_ / "project";
    EXPECT_THROW(find_compose_file(project.string()), ComposeError);
    std::ofstream(project / "docker-compose.yml") << "services: {}\n";
    EXPECT_EQ(find_compose_file(project.string()), (project / "docker-compose.yml").string());
    std::ofstream(project / "compose.yml") << "services: {}\n";
    EXPECT_EQ(find_compose_file(project.string()), (project / "compose.yml").string());
    EXPECT_THROW(parse_compose((project / "none.yaml").string()), ComposeError);
}

TEST_F(ComposeFileTest, NamedVolumes) {
    const ComposeFile file = parse(
        "services:\n  db:\n    image: db\n    volumes: [\"data:/var/lib/db/\", \"conf:/etc/db:ro\"]\n"
        "volumes:\n  data:\n    size: 1G\n  conf: {external: true}\n  spare:\n");
    ASSERT_EQ(file.volumes.size(), 3u);
    EXPECT_EQ(file.volumes[0].name, "data");
    EXPECT_EQ(file.volumes[0].size_mb, 1024);
    EXPECT_FALSE(file.volumes[0].external);
    EXPECT_EQ(file.volumes[1].name, "conf");
    EXPECT_TRUE(file.volumes[1].external);
    EXPECT_EQ(file.volumes[2].size_mb, volumes::kDefaultSizeMb);
    const auto& v = file.services.at(0).volumes;
    ASSERT_EQ(v.size(), 2u);
    EXPECT_EQ(v[0].name, "data");
    EXPECT_EQ(v[0].at, "/var/lib/db");  // normalized
    EXPECT_FALSE(v[0].readonly);
    EXPECT_EQ(v[1].at, "/etc/db");
    EXPECT_TRUE(v[1].readonly);
    EXPECT_TRUE(parse("volumes:\nservices:\n  a:\n    image: a\n").volumes.empty());
}

TEST_F(ComposeFileTest, VolumeErrorsNameTheLineAndTheKey) {
    EXPECT_EQ(error("services:\n  web:\n    image: web\n    volumes: [\"data:/d\"]\n"),
              "4: services.web.volumes: 'data' is not in the top-level 'volumes'");
    EXPECT_EQ(error("volumes:\n  data:\nservices:\n  web:\n    image: web\n    volumes:\n      - data:/\n"),
              "7: services.web.volumes: data:/: mount path '/': a volume cannot be mounted over the root file system");
    EXPECT_EQ(error("volumes:\n  data:\nservices:\n  web:\n    image: web\n    volumes: [\"data:/d:rx\"]\n"),
              "6: services.web.volumes: data:/d:rx: the mode is ro or rw");
    EXPECT_EQ(error("volumes:\n  data:\n    size: 1M\nservices:\n  web:\n    image: web\n"),
              "3: volumes.data.size: size '1M': a volume size is like 64M, 512M or 1G (at least 8M, at most 1T)");
    EXPECT_EQ(error("volumes:\n  data:\n    driver: local\nservices:\n  web:\n    image: web\n"),
              "3: volumes.data.driver: a Kiln volume is an ext4 image file on kilnd's host: no drivers");
    EXPECT_EQ(error("volumes:\n  Data:\nservices:\n  web:\n    image: web\n"),
              "2: volumes: 'Data' is not a valid name (lower-case letters, digits, '.', '_', '-'; at most 63)");
    EXPECT_EQ(error("volumes:\n  a:\n  b:\nservices:\n  web:\n    image: web\n    volumes: [\"a:/d\", \"b:/d/\"]\n"),
              "7: services.web.volumes: two volumes at /d");
    EXPECT_EQ(error("volumes:\n  a:\n  b:\nservices:\n  web:\n    image: web\n    volumes: [\"a:/d\", \"b:/d/e\"]\n"),
              "7: services.web.volumes: /d/e lies inside the volume at /d");
}

}  // namespace
}  // namespace kiln::cli
