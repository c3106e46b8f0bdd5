// The store's SQLite layer against a real database file: statements are prepared once and kept,
// and a kept statement must behave as a freshly prepared one.
#include "store/sqlite.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <vector>

namespace kiln::store {
namespace {

class SqliteTest : public ::testing::Test {
  protected:
    void SetUp() override {
        path_ = std::filesystem::temp_directory_path() / ("kiln-sqlite-" + std::to_string(::getpid()) + ".db");
        db_ = std::make_unique<Database>(path_.string());
        db_->exec("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT UNIQUE)");
        for (int64_t id = 1; id <= 3; ++id) insert(id, "n" + std::to_string(id));
    }
    void TearDown() override {
        db_.reset();
        for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path_.string() + suffix);
    }
    void insert(int64_t id, const std::string& name) {
        Statement s(*db_, "INSERT INTO t (id, name) VALUES (?1, ?2)");
        s.bind(1, id).bind(2, name);
        s.step();
    }
    std::filesystem::path path_;
    std::unique_ptr<Database> db_;
};

TEST_F(SqliteTest, AKeptStatementForgetsItsBindings) {
    {
        Statement s(*db_, "SELECT name FROM t WHERE id = ?1");
        s.bind(1, int64_t{2});
        ASSERT_TRUE(s.step());
        EXPECT_EQ(s.text(0), "n2");
    }
    Statement again(*db_, "SELECT name FROM t WHERE id = ?1");
    EXPECT_FALSE(again.step());  // unbound: NULL matches no id
}

TEST_F(SqliteTest, AKeptStatementStartsFromItsFirstRow) {
    {
        Statement s(*db_, "SELECT id FROM t ORDER BY id");
        ASSERT_TRUE(s.step());  // left after one row of three
    }
    Statement again(*db_, "SELECT id FROM t ORDER BY id");
    ASSERT_TRUE(again.step());
    EXPECT_EQ(again.integer(0), 1);
}

TEST_F(SqliteTest, TwoUsesOfOneStatementAtOnceEachHaveTheirOwn) {
    Statement outer(*db_, "SELECT id FROM t ORDER BY id");
    std::vector<std::pair<int64_t, int64_t>> pairs;
    while (outer.step()) {
        Statement inner(*db_, "SELECT id FROM t ORDER BY id");
        while (inner.step()) pairs.emplace_back(outer.integer(0), inner.integer(0));
    }
    EXPECT_EQ(pairs.size(), 9u);
    EXPECT_EQ(pairs.back(), std::make_pair(int64_t{3}, int64_t{3}));
}

TEST_F(SqliteTest, AStatementThatFailedIsUsableAgain) {
    EXPECT_THROW(insert(4, "n1"), DatabaseError);  // name is UNIQUE
    insert(4, "n4");
    Statement count(*db_, "SELECT count(*) FROM t");
    ASSERT_TRUE(count.step());
    EXPECT_EQ(count.integer(0), 4);
}

TEST_F(SqliteTest, AKeptStatementSeesASchemaChange) {
    {
        Statement s(*db_, "SELECT * FROM t WHERE id = 1");
        ASSERT_TRUE(s.step());
    }
    db_->exec("ALTER TABLE t ADD COLUMN colour TEXT DEFAULT 'red'");
    Statement s(*db_, "SELECT * FROM t WHERE id = 1");
    ASSERT_TRUE(s.step());
    EXPECT_EQ(s.text(2), "red");
}

TEST_F(SqliteTest, ABadStatementIsAnErrorNamingTheDatabase) {
    try {
        Statement s(*db_, "SELECT x FROM nowhere");
        FAIL() << "prepared";
    } catch (const DatabaseError& e) {
        EXPECT_NE(std::string(e.what()).find(path_.string()), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("nowhere"), std::string::npos) << e.what();
    }
}

}  // namespace
}  // namespace kiln::store
