-- +goose Up
-- The search index (internal/search), a projection of the ticket events
-- rebuilt by replay: one row per ticket (rowid = ticket id) with its
-- title, body, every comment (in order, joined by blank lines), its labels
-- and, in cjk, the overlapping two-character pieces of every CJK run
-- (Chinese, Japanese, Korean are written without spaces, so 東京 must find
-- 東京都庁に行きました; FTS5's trigram tokenizer cannot match two
-- characters). Words use unicode61 with a prefix index, for prefix search.
CREATE VIRTUAL TABLE search_fts USING fts5(
    title, body, comments, labels, cjk,
    tokenize = 'unicode61 remove_diacritics 2',
    prefix = '2 3'
);
-- Each ticket's live comments, so an edit or a deletion rebuilds the
-- ticket's row and a match can name the comment's author.
CREATE TABLE search_comments (
    ticket_id INTEGER NOT NULL,
    id        INTEGER NOT NULL,
    author    TEXT    NOT NULL,
    body      TEXT    NOT NULL,
    PRIMARY KEY (ticket_id, id)
);

-- +goose Down
DROP TABLE search_comments;
DROP TABLE search_fts;
