module kiln.test/gohttp

go 1.19
