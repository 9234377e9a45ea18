from bench.detect.run import main

main()
