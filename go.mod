module github.com/intactsec/intact

go 1.26.8
