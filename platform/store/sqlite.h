// A thin RAII layer over SQLite's C API: a database opened in WAL mode and prepared statements.
// SQLite is the library; this only turns its error codes into exceptions that name the database.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <unordered_map>

struct sqlite3;
struct sqlite3_stmt;

namespace kiln::store {

class DatabaseError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

class Database {
  public:
    // Opens or creates `path` in WAL mode with a busy timeout, so several processes may share it.
    explicit Database(const std::string& path);
    ~Database();
    Database(const Database&) = delete;
    Database& operator=(const Database&) = delete;

    void exec(const std::string& sql);
    sqlite3* handle() const { return db_; }
    const std::string& path() const { return path_; }

    // `sql` prepared, from the cache if a statement of it is there (Statement's use).
    sqlite3_stmt* take_statement(const char* sql);
    // A statement back into the cache, reset and its bindings cleared.
    void return_statement(sqlite3_stmt* stmt);

  private:
    std::string path_;
    sqlite3* db_ = nullptr;
    // Prepared statements kept between uses, one per SQL text: preparing an instance's SELECT of
    // 25 columns took most of a store lookup (~0.1 ms of a wake's 0.3 ms in kilnd). A statement
    // is out of the cache while in use, so a second use of the same SQL at once (nested, or on
    // another thread: the connection is serialized) prepares its own.
    std::mutex cache_mutex_;
    std::unordered_map<std::string, sqlite3_stmt*> cache_;
};

// A prepared statement, finalized on scope exit. Binding indexes start at 1, columns at 0.
class Statement {
  public:
    Statement(Database& db, const char* sql);
    ~Statement();
    Statement(const Statement&) = delete;
    Statement& operator=(const Statement&) = delete;

    Statement& bind(int index, const std::string& text);
    Statement& bind(int index, int64_t value);
    Statement& bind_null(int index);
    // True while there is a row; false when done. Throws DatabaseError.
    bool step();
    std::string text(int column) const;
    int64_t integer(int column) const;
    bool is_null(int column) const;

  private:
    Database& db_;
    sqlite3_stmt* stmt_ = nullptr;
};

// BEGIN IMMEDIATE ... COMMIT, rolled back if not committed (an exception on the way).
class Transaction {
  public:
    explicit Transaction(Database& db);
    ~Transaction();
    void commit();

  private:
    Database& db_;
    bool done_ = false;
};

}  // namespace kiln::store
