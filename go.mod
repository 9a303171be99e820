module github.com/imgd/imgd

go 1.26.8
