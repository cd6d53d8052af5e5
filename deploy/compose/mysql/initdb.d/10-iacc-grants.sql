-- Run once by the mysql image when its volume is empty, after it created the
-- iacc database and user (MYSQL_DATABASE, MYSQL_USER).
-- The weekly backup verification restores into scratch databases named
-- iacc_verify_<random> and drops them afterwards.
GRANT ALL PRIVILEGES ON `iacc\_verify\_%`.* TO 'iacc'@'%';
FLUSH PRIVILEGES;
